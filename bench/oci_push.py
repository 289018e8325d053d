"""Benchmark of releases.oci blob pushes against a real docker-registry.

Run: ``.venv/bin/python -m bench.oci_push [--quick]`` (about a minute). It starts its own registry
(storage on /dev/shm when it has room, so the disk does not hide client overhead) and measures, in
one run:

(a) throughput of a 256 MiB random blob pushed by RegistryClient vs ``curl`` doing the same
    monolithic upload (POST for a location, then ``curl -T file -X PUT '<location>&digest=...'``),
    alternating who goes first, 5 rounds (the goal is within the noise: the spread is reported);
    goal: client/curl >= 0.95;
(b) peak RSS growth of a fresh process pushing a 1 GiB blob; goal: < 64 MiB;
(c) re-pushing an already present blob uploads 0 bytes.
Quick mode: an 8 MiB blob, one round, a 32 MiB layer.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._tools import in_fresh_process, require, scratch_directory  # noqa: E402
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, ratio_figure  # noqa: E402
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


def throughput(sizes: Sizes, registry_host: str, base_url: str, workdir: Path) -> Figure:
    size = sizes.blob_mib * MiB
    client_rates: list[float] = []
    curl_rates: list[float] = []
    with RegistryClient(registry_host) as client:
        client.check()  # warm the connection pool
        for round_number in range(sizes.rounds):
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
                    client_rates.append(size / MiB / elapsed)
                else:
                    repository = f"bench/curl{round_number}"
                    curl_rates.append(size / MiB / push_with_curl(base_url, repository, curl_file, curl_digest))
            print(
                f"  round {round_number + 1}: client {client_rates[-1]:7.1f} MiB/s   curl {curl_rates[-1]:7.1f} MiB/s"
            )
            client_file.unlink()
            curl_file.unlink()
    return ratio_figure(
        f"{sizes.blob_mib} MiB blob push, our client / curl (monolithic PUT), same registry",
        client_rates,
        curl_rates,
        "MiB/s",
        Goal(">=", 0.95),
    )


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


def memory(sizes: Sizes, registry_host: str, workdir: Path) -> list[Figure]:
    size = sizes.big_mib * MiB
    big = workdir / "big.bin"
    digest = make_blob(big, size, seed=99)
    figures = in_fresh_process(rss_child, registry_host, str(big), digest)
    big.unlink()
    if figures["uploaded"] != size:
        raise SystemExit(f"the {sizes.big_mib} MiB push uploaded {figures['uploaded']} bytes, not {size}")
    growth = (figures["after_kib"] - figures["before_kib"]) / 1024
    return [
        Figure(
            f"{sizes.big_mib} MiB layer push in a fresh process, peak RSS increase",
            growth,
            "MiB",
            goal=Goal("<", 64, " MiB"),
            note=f"{size / MiB / figures['s']:.0f} MiB/s",
        ),
        Figure(
            f"re-push of the present {sizes.big_mib} MiB blob: bytes uploaded",
            figures["again"],
            "bytes",
            goal=Goal("==", 0, " bytes"),
        ),
    ]


@dataclass(frozen=True)
class Sizes:
    blob_mib: int
    big_mib: int
    rounds: int


QUICK = Sizes(blob_mib=8, big_mib=32, rounds=1)
FULL = Sizes(blob_mib=256, big_mib=1024, rounds=EDGE_ROUNDS)


def run(quick: bool) -> list[Figure]:
    sizes = QUICK if quick else FULL
    require("curl", "docker-registry")
    needed = (sizes.blob_mib * (2 * sizes.rounds + 2) + sizes.big_mib * 2) * MiB  # the registry keeps every blob
    workdir = Path(tempfile.mkdtemp(prefix="oci-bench-", dir=scratch_directory(needed)))
    registry = start_registry(workdir / "registry", {"log": {"level": "warn"}})
    print(f"registry {registry.url} (storage {registry.root}), {os.cpu_count()} CPUs")
    try:
        return [throughput(sizes, registry.host, registry.url, workdir), *memory(sizes, registry.host, workdir)]
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main(run)
