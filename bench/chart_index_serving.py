"""``GET /charts/index.yaml`` with 1,000 indexed chart versions: served from the cache vs regenerated.

Both are measured in one run through the real view (Django test client, its own PostgreSQL
database ``bench_chart_index_serving``, recreated): the cached path reads the charts' generation
(one primary-key lookup) and returns cached bytes; the regenerating path is the same view after
the generation changed (every request a cache miss: the full query with dependencies and
rendering). The charts are indexed, each with a dependency (``bench/_seed.py``).
Goal: cached at least 20x faster. Quick mode: 50 charts, 3 requests each way.

Run: .venv/bin/python -m bench.chart_index_serving [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._database import use_database  # noqa: E402
from bench.figures import Figure, Goal, main  # noqa: E402


def run(quick: bool) -> list[Figure]:
    count, requests = (50, 3) if quick else (1000, 30)
    use_database("chart_index_serving", redis_db=14)
    from django.test import Client

    from bench import _seed
    from releases.models import DataGeneration

    _seed.indexed_charts(_seed.versions(count))
    _seed.analyze()
    client = Client()

    def timed(bump: bool) -> float:
        samples = []
        for _ in range(requests):
            if bump:
                DataGeneration.bump(DataGeneration.CHARTS)
            start = time.perf_counter()
            response = client.get("/charts/index.yaml")
            samples.append(time.perf_counter() - start)
            assert response.status_code == 200, response.status_code
            assert response.content.count(b"- apiVersion:") == count, "index.yaml lacks chart versions"
        return statistics.median(samples) * 1000

    timed(False)  # warm the cache
    cached = timed(False)
    regenerated = timed(True)
    return [
        Figure(
            f"GET /charts/index.yaml, {count:,} versions: regenerate / cached (medians of {requests})",
            regenerated,
            "ms",
            cached,
            Goal(">=", 20),
        )
    ]


if __name__ == "__main__":
    main(run)
