"""The admin's front page (the control room overview) over 10,000 releases and 1,000 open findings.

Measured in one process through Django's full request handling (middleware, session, admin,
templates; no network) against the trivial DRF endpoint ``/api/v1/health/`` in the same run (these
2-core machines are noisy). Uses its own PostgreSQL database (``bench_admin_overview``, recreated).
Figures and goals:

- ``GET /admin/`` (the overview) as a logged-in superuser: mean ms (goal < 100 ms) and the ratio
  to health/; the query count (constant: the same as with 10 releases);
- ``GET /admin/overview/live/`` (what the page polls every 2 s while work runs): mean ms.

Run: .venv/bin/python bench/admin_overview.py [--releases 10000] [--findings 1000] [--repeat 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._database import use_database  # noqa: E402


def mean_seconds(repeat: int, request: Callable[[], object]) -> float:
    request()  # warm
    started = time.perf_counter()
    for _ in range(repeat):
        request()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    use_database("bench_admin_overview", redis_db=11, ALLOWED_HOSTS="testserver")
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from tests.fixtures.factories import seed_release_history

    started = time.perf_counter()
    seed_release_history(args.releases, findings=args.findings)
    print(f"seeded {args.releases} releases, {args.findings} findings in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    client = Client()
    client.force_login(User.objects.create_superuser("bench", "bench@example.com", "pw"))

    def get(url: str) -> Callable[[], object]:
        def request() -> object:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response

        return request

    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    get("/admin/")()
    with connection.execute_wrapper(count):
        get("/admin/")()
    overview = mean_seconds(args.repeat, get("/admin/"))
    live = mean_seconds(args.repeat, get("/admin/overview/live/"))
    health = mean_seconds(args.repeat * 4, get("/api/v1/health/"))
    print(f"GET /admin/ (overview): {overview * 1000:.1f} ms, {len(queries)} queries")
    print(f"GET /admin/overview/live/: {live * 1000:.1f} ms")
    print(f"GET /api/v1/health/: {health * 1000:.2f} ms")
    print(f"overview / health: {overview / health:.1f}x; goal: overview < 100 ms")


if __name__ == "__main__":
    main()
