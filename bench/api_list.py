"""Throughput of ``GET /api/v1/releases/?page_size=100`` with 10,000 releases, under gunicorn.

Measured with ``wrk`` as a ratio to the trivial DRF endpoint ``/api/v1/health/`` in the same run
(goal >= 0.5x), plus the list's p99 latency (goal < 100 ms). Uses its own PostgreSQL database
(``bench_registry``, recreated), so it never touches test or production data.

Run: .venv/bin/python bench/api_list.py [--releases 10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "bench_registry"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": "bench-secret-key",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DJANGO_SETTINGS_MODULE": "registry.settings",
    }


def recreate_database() -> None:
    for sql in (f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=environment(), check=True)


SEED = """
import hashlib, sys
import django
django.setup()
from django.utils import timezone
from releases.choices import ArtifactType, ChartState, ImageState, ReleaseState
from releases.models import DockerImage, HelmChart, ReleaseArtifact, ReleaseVersion
from releases.versions import column_sort_key
n = int(sys.argv[1])
versions = [f"{i // 10000}.{(i // 100) % 100}.{i % 100}" for i in range(n)]
digest = lambda text: "sha256:" + hashlib.sha256(text.encode()).hexdigest()
now = timezone.now()
releases = ReleaseVersion.objects.bulk_create(
    ReleaseVersion(version=v, version_order=column_sort_key(v), commit_sha="a" * 40, pr_number=1,
                   changelog="## " + v, state=ReleaseState.PUBLISHED, published_at=now) for v in versions)
images = DockerImage.objects.bulk_create(
    DockerImage(name=name, tag=v, tag_order=column_sort_key(v), state=ImageState.AVAILABLE, digest=digest(name + v),
                size=1000, build_date=now, context_path="x/", dockerfile_path="Dockerfile")
    for v in versions for name in ("threek8s-frontend", "threek8s-backend"))
charts = HelmChart.objects.bulk_create(
    HelmChart(chart_version=v, app_version=v, version_order=column_sort_key(v), state=ChartState.INDEXED,
              digest=digest("chart" + v), size=100, package_digest=digest("tgz" + v), indexed_at=now)
    for v in versions)
artifacts = []
for i, release in enumerate(releases):
    frontend, backend, chart = images[2 * i], images[2 * i + 1], charts[i]
    for kind, target in ((ArtifactType.DOCKER_FRONTEND, frontend), (ArtifactType.DOCKER_BACKEND, backend)):
        artifacts.append(ReleaseArtifact(release=release, type=kind, uri=target.pinned_uri, checksum=target.digest,
                                         size=target.size, docker_image=target))
    artifacts.append(ReleaseArtifact(release=release, type=ArtifactType.HELM_CHART, uri=chart.pinned_uri,
                                     checksum=chart.digest, size=100, helm_chart=chart))
ReleaseArtifact.objects.bulk_create(artifacts, batch_size=5000)
print(f"seeded {len(releases)} releases, {len(artifacts)} artifacts")
"""


def wrk(url: str, seconds: int) -> tuple[float, float]:
    """(requests per second, p99 latency in ms)."""
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", url], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url} answered {non2xx.group(1)} errors; see the gunicorn log")
    return rps, p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    recreate_database()
    subprocess.run([sys.executable, "-c", SEED, str(args.releases)], cwd=ROOT, env=environment(), check=True)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "registry.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--access-logfile",
            "/dev/null",
        ],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        for path in ("/api/v1/health/", "/api/v1/releases/?page_size=100"):  # warm every worker
            wrk(base + path, 2)
        health_rps, health_p99 = wrk(base + "/api/v1/health/", args.seconds)
        list_rps, list_p99 = wrk(base + "/api/v1/releases/?page_size=100", args.seconds)
    finally:
        server.terminate()
        server.wait(10)
    print(f"releases in the database:        {args.releases}")
    print(f"GET /api/v1/health/ (baseline):  {health_rps:8.1f} req/s  p99 {health_p99:6.1f} ms")
    print(f"GET /api/v1/releases/?page_size=100: {list_rps:8.1f} req/s  p99 {list_p99:6.1f} ms")
    print(f"ratio list/baseline:             {list_rps / health_rps:.2f}x (goal >= 0.5x); p99 goal < 100 ms")


if __name__ == "__main__":
    main()
