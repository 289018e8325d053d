"""The web side of the HTTP benchmarks: a gunicorn serving the benchmark's database, and ``wrk``
against it (requests per second and p99), with POST bodies given as a Lua script."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._tools import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, timeout: float = 60) -> None:
    """Until ``url`` answers 200: gunicorn listens before its workers have booted."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"gunicorn did not answer {url} within {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def gunicorn(workers: int) -> Iterator[str]:
    """``registry.wsgi`` under gunicorn with ``workers`` workers, on this process's environment
    (the benchmark's database); yields its base URL once its health endpoint answers.

    Its log (a line per admission review and per verify) goes to a file, as a deployment's does,
    not into the benchmark's output: a full admission run wrote 136,000 lines there. (Relayed by
    ``bin/bench``, a line cost 2.8 us of CPU: 0.4% of a core at 1,300 reviews a second, no
    measurable part of the figures.) Its last lines are printed when the benchmark fails."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-gunicorn-") as directory:
        log = Path(directory) / "gunicorn.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "registry.wsgi", "--bind", f"127.0.0.1:{port}"]
                + ["--workers", str(workers), "--access-logfile", "/dev/null"],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=output,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base + "/api/v1/health/")
            yield base
        except BaseException:
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
            print(f"the last {len(lines)} lines of gunicorn's log:", *lines, sep="\n", file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(10)


#: How many of gunicorn's last log lines a failed benchmark prints.
LOG_TAIL = 30


def post_script(path: Path, body: dict | list, token: str | None = None) -> Path:
    """A wrk Lua script that POSTs ``body`` as JSON (with a bearer ``token``)."""
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if token:
        headers += f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    path.write_text(f'wrk.method = "POST"\n{headers}wrk.body = [==[{json.dumps(body)}]==]\n')
    return path


def wrk(url: str, seconds: int, script: Path | None = None) -> tuple[float, float]:
    """(requests per second, p99 latency in ms); any error answer or socket error stops the run."""
    command = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", url]
    if script:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url} answered {non2xx.group(1)} errors (gunicorn's last log lines are printed above)")
    if "Socket errors" in out:
        raise SystemExit(f"wrk met socket errors on {url} (gunicorn too slow or gone):\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
