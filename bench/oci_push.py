"""Benchmark of releases.oci blob pushes against a real docker-registry.

Run: ``.venv/bin/python bench/oci_push.py`` (about a minute). It starts its own registry and
measures, in one run:

(a) throughput of a 256 MiB random blob pushed by RegistryClient vs ``curl`` doing the same
    monolithic upload (POST for a location, then ``curl -T file -X PUT '<location>&digest=...'``),
    alternating who goes first; goal: client/curl >= 0.95;
(b) peak RSS growth of a fresh process pushing a 1 GiB blob; goal: < 64 MiB;
(c) re-pushing an already present blob uploads 0 bytes.
Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from releases.oci import RegistryClient  # noqa: E402
from releases.sandbox.registry import start_registry  # noqa: E402

MiB = 1024 * 1024


def make_blob(path: Path, size: int, seed: int) -> str:
    """Write ``size`` pseudo-random (incompressible) bytes; return the digest."""
    generator = random.Random(seed)
    hasher = hashlib.sha256()
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            chunk = generator.randbytes(min(8 * MiB, remaining))
            hasher.update(chunk)
            handle.write(chunk)
            remaining -= len(chunk)
    return "sha256:" + hasher.hexdigest()


def push_with_client(client: RegistryClient, repository: str, path: Path, digest: str) -> tuple[float, int]:
    start = time.perf_counter()
    uploaded = client.push_blob(repository, digest, path.stat().st_size, path)
    return time.perf_counter() - start, uploaded


def push_with_curl(base_url: str, repository: str, path: Path, digest: str) -> float:
    start = time.perf_counter()
    post = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            f"{base_url}/v2/{repository}/blobs/uploads/",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    headers = dict(line.split(":", 1) for line in post.stdout.splitlines() if ":" in line)
    location = {key.lower(): value.strip() for key, value in headers.items()}["location"]
    if location.startswith("/"):
        location = base_url + location
    separator = "&" if "?" in location else "?"
    put = subprocess.run(
        [
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", "Content-Type: application/octet-stream",
            "-T", str(path), "-X", "PUT", f"{location}{separator}digest={digest}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if put.stdout.strip() != "201":
        raise RuntimeError(f"curl upload failed: HTTP {put.stdout.strip()} {put.stderr}")
    return elapsed


def throughput(args: argparse.Namespace, registry_host: str, base_url: str, workdir: Path) -> bool:
    size = args.blob_mib * MiB
    client_times: list[float] = []
    curl_times: list[float] = []
    with RegistryClient(registry_host) as client:
        client.check()  # warm the connection pool
        for round_number in range(args.rounds):
            client_file, curl_file = workdir / "client.bin", workdir / "curl.bin"
            client_digest = make_blob(client_file, size, seed=2 * round_number)
            curl_digest = make_blob(curl_file, size, seed=2 * round_number + 1)
            order = ["client", "curl"] if round_number % 2 == 0 else ["curl", "client"]
            for who in order:
                if who == "client":
                    elapsed, uploaded = push_with_client(
                        client, f"bench/client{round_number}", client_file, client_digest
                    )
                    assert uploaded == size
                    client_times.append(elapsed)
                else:
                    repository = f"bench/curl{round_number}"
                    curl_times.append(push_with_curl(base_url, repository, curl_file, curl_digest))
            print(
                f"  round {round_number + 1}: client {size / MiB / client_times[-1]:7.1f} MiB/s   "
                f"curl {size / MiB / curl_times[-1]:7.1f} MiB/s"
            )
            client_file.unlink()
            curl_file.unlink()
    client_rate = size / MiB / statistics.median(client_times)
    curl_rate = size / MiB / statistics.median(curl_times)
    ratio = client_rate / curl_rate
    ok = ratio >= 0.95
    print(f"(a) {args.blob_mib} MiB blob, median of {args.rounds} rounds:")
    print(f"    client {client_rate:.1f} MiB/s, curl {curl_rate:.1f} MiB/s")
    print(f"    ratio client/curl {ratio:.3f} (goal >= 0.95) {_ok(ok)}")
    return ok


def rss_child(host: str, path: str, digest: str) -> None:
    """Runs in a fresh process: print RSS before/after pushing ``path``."""
    with RegistryClient(host) as client:
        warm = b"warm-up" * 1000
        client.push_blob("bench/rss", "sha256:" + hashlib.sha256(warm).hexdigest(), len(warm), warm)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        uploaded = client.push_blob("bench/rss", digest, os.path.getsize(path), path)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        again = client.push_blob("bench/rss", digest, os.path.getsize(path), path)
    figures = {"before_kib": before, "after_kib": after, "uploaded": uploaded, "again": again, "s": elapsed}
    print(json.dumps(figures))


def memory(args: argparse.Namespace, registry_host: str, workdir: Path) -> bool:
    size = args.big_mib * MiB
    big = workdir / "big.bin"
    digest = make_blob(big, size, seed=99)
    result = subprocess.run(
        [sys.executable, __file__, "--rss-child", registry_host, str(big), digest],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    growth_mib = (figures["after_kib"] - figures["before_kib"]) / 1024
    ok_rss = growth_mib < 64 and figures["uploaded"] == size
    print(f"(b) {args.big_mib} MiB blob in a fresh process: {size / MiB / figures['s']:.1f} MiB/s;")
    before, after = figures["before_kib"] / 1024, figures["after_kib"] / 1024
    print(f"    peak RSS {before:.1f} MiB before, {after:.1f} MiB after:")
    print(f"    +{growth_mib:.1f} MiB (goal < 64 MiB) {_ok(ok_rss)}")
    ok_repush = figures["again"] == 0
    again = figures["again"]
    print(f"(c) re-push of the same {args.big_mib} MiB blob uploaded {again} bytes {_ok(ok_repush)}")
    big.unlink()
    return ok_rss and ok_repush


def _default_workdir(args: argparse.Namespace) -> str | None:
    needed = (args.blob_mib * (2 * args.rounds + 2) + args.big_mib * 2) * MiB
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > needed * 1.2:
        return str(shm)
    return None


def _ok(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--blob-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--workdir",
        default=None,
        help="where blobs and registry storage go (default: /dev/shm when it has room, so the disk "
        "does not hide client overhead; else the temp dir)",
    )
    parser.add_argument("--rss-child", nargs=3, metavar=("HOST", "PATH", "DIGEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    if shutil.which("curl") is None or shutil.which("docker-registry") is None:
        print("needs curl and docker-registry (apt-get install curl docker-registry)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="oci-bench-", dir=args.workdir or _default_workdir(args)))
    registry = start_registry(workdir / "registry", {"log": {"level": "warn"}})
    print(f"registry {registry.url} (storage {registry.root}), {os.cpu_count()} CPUs")
    try:
        ok_a = throughput(args, registry.host, registry.url, workdir)
        ok_bc = memory(args, registry.host, workdir)
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok_a and ok_bc else 1


if __name__ == "__main__":
    sys.exit(main())
