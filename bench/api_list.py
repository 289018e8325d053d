"""Throughput of ``GET /api/v1/releases/?page_size=100`` with 10,000 releases, under gunicorn.

Measured with ``wrk`` as a ratio to the trivial DRF endpoint ``/api/v1/health/`` in the same run
(goal >= 0.5x), plus the list's p99 latency (goal < 100 ms). The releases are published, each with
its two images, its chart and their artifacts (``bench/_seed.py``). Its own PostgreSQL database
(``bench_api_list``, recreated). Quick mode: 200 releases, one worker, 1-second wrk runs.

Run: .venv/bin/python -m bench.api_list [--quick]
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._database import use_database  # noqa: E402
from bench.figures import Figure, Goal, MissingTool, main  # noqa: E402


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


def wrk(url: str, seconds: int) -> tuple[float, float]:
    """(requests per second, p99 latency in ms)."""
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", url], capture_output=True, text=True, check=True
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url} answered {non2xx.group(1)} errors; see the gunicorn log")
    if "Socket errors" in out:
        raise SystemExit(f"wrk met socket errors on {url} (gunicorn too slow or gone):\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run(quick: bool) -> list[Figure]:
    releases, seconds, workers = (200, 1, 1) if quick else (10_000, 10, 3)
    if not shutil.which("wrk"):
        raise MissingTool("wrk is not installed: apt-get install wrk")
    use_database("api_list", redis_db=13)
    from bench import _seed

    started = time.perf_counter()
    artifacts = _seed.published_releases(releases)
    _seed.analyze()
    print(f"seeded {releases} releases, {artifacts} artifacts in {time.perf_counter() - started:.1f} s")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "registry.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", str(workers), "--access-logfile", "/dev/null"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base + "/api/v1/health/")
        for path in ("/api/v1/health/", "/api/v1/releases/?page_size=100"):  # warm every worker
            wrk(base + path, 1 if quick else 2)
        health_rps, _ = wrk(base + "/api/v1/health/", seconds)
        list_rps, list_p99 = wrk(base + "/api/v1/releases/?page_size=100", seconds)
    finally:
        server.terminate()
        server.wait(10)
    return [
        Figure(
            f"{releases:,} releases, gunicorn, wrk: releases/?page_size=100 / trivial DRF health/",
            list_rps,
            "req/s",
            health_rps,
            Goal(">=", 0.5),
        ),
        Figure("the same list's p99 latency", list_p99, "ms", goal=Goal("<", 100, " ms")),
    ]


if __name__ == "__main__":
    main(run)
