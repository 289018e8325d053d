"""Throughput of ``GET /api/v1/releases/?page_size=100`` with 10,000 releases, under gunicorn.

Measured with ``wrk`` as a ratio to the trivial DRF endpoint ``/api/v1/health/`` in the same run
(goal >= 0.5x), plus the list's p99 latency (goal < 100 ms). The releases are published, each with
its two images, its chart and their artifacts (``bench/_seed.py``). Its own PostgreSQL database
(``bench_api_list``, recreated). Quick mode: 200 releases, one worker, 1-second wrk runs.

Run: .venv/bin/python -m bench.api_list [--quick]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._database import use_database  # noqa: E402
from bench._http import gunicorn, wrk  # noqa: E402
from bench.figures import Figure, Goal, MissingTool, main  # noqa: E402


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
    with gunicorn(workers) as base:
        for path in ("/api/v1/health/", "/api/v1/releases/?page_size=100"):  # warm every worker
            wrk(base + path, 1 if quick else 2)
        health_rps, _ = wrk(base + "/api/v1/health/", seconds)
        list_rps, list_p99 = wrk(base + "/api/v1/releases/?page_size=100", seconds)
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
