"""``GET /charts/index.yaml`` with 1,000 indexed chart versions: served from the cache vs regenerated.

Both are measured in one run through the real view (Django test client, PostgreSQL database
``bench_registry_charts``, recreated): the cached path reads the charts' generation (one
primary-key lookup) and returns cached bytes; the regenerating path is the same view after the
generation changed (every request a cache miss: the full query with dependencies and rendering).
Goal: cached at least 20x faster.

Run: .venv/bin/python bench/chart_index_serving.py [--charts 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "bench_registry_charts"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--charts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    for sql in (f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        SECRET_KEY="bench",
        DEBUG="false",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="false",
        DJANGO_SETTINGS_MODULE="registry.settings",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from releases.choices import ChartState
    from releases.models import ChartDependency, DataGeneration, HelmChart
    from releases.versions import column_sort_key

    call_command("migrate", verbosity=0)
    now = timezone.now()
    versions = [f"1.{i // 100}.{i % 100}" for i in range(args.charts)]
    charts = HelmChart.objects.bulk_create(
        HelmChart(
            chart_version=v,
            app_version=v,
            version_order=column_sort_key(v),
            state=ChartState.INDEXED,
            digest="sha256:" + "a" * 64,
            package_digest="sha256:" + "b" * 64,
            indexed_at=now,
            description="The threek8s app",
        )
        for v in versions
    )
    ChartDependency.objects.bulk_create(
        ChartDependency(chart=c, name="redis", version="^20.0.0", repository="oci://r.example/charts") for c in charts
    )
    client = Client()

    def timed(bump: bool) -> float:
        samples = []
        for _ in range(args.rounds):
            if bump:
                DataGeneration.bump(DataGeneration.CHARTS)
            start = time.perf_counter()
            response = client.get("/charts/index.yaml")
            samples.append(time.perf_counter() - start)
            assert response.status_code == 200 and response.content.count(b"- apiVersion:") == args.charts
        return statistics.median(samples)

    timed(False)  # warm the cache
    cached = timed(False)
    regenerated = timed(True)
    print(f"charts indexed:            {args.charts}")
    print(f"regenerate index.yaml:     {regenerated * 1000:8.2f} ms (median of {args.rounds})")
    print(f"serve from cache:          {cached * 1000:8.2f} ms (median of {args.rounds})")
    print(f"cached is {regenerated / cached:.1f}x faster (goal >= 20x)")


if __name__ == "__main__":
    main()
