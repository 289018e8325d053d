"""The admin's front page (the control room overview) over 10,000 releases and 1,000 open findings.

Measured in one process through Django's full request handling (middleware, session, admin,
templates; no network) against the trivial DRF endpoint ``/api/v1/health/`` in the same run (these
2-core machines are noisy). Its own PostgreSQL database (``bench_admin_overview``, recreated),
seeded by the tests' ``seed_release_history``. Figures and goals:

- ``GET /admin/`` (the overview) as a logged-in superuser: mean ms (goal < 100 ms) and the ratio
  to health/; the query count (constant: the same as with 10 releases);
- ``GET /admin/overview/live/`` (what the page polls every 2 s while work runs): mean ms.

Quick mode: 100 releases, 10 findings, 3 requests each.

Run: .venv/bin/python -m bench.admin_overview [--quick]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._database import use_database  # noqa: E402
from bench.figures import Figure, Goal, main, mean_seconds  # noqa: E402


def run(quick: bool) -> list[Figure]:
    releases, findings, repeat = (100, 10, 3) if quick else (10_000, 1_000, 50)
    use_database("admin_overview", redis_db=11)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from bench._seed import analyze
    from tests.fixtures.factories import seed_release_history

    started = time.perf_counter()
    seed_release_history(releases, findings=findings)
    print(f"seeded {releases} releases, {findings} findings in {time.perf_counter() - started:.1f} s")
    analyze()

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
    overview = mean_seconds(repeat, get("/admin/")) * 1000
    live = mean_seconds(repeat, get("/admin/overview/live/")) * 1000
    health = mean_seconds(repeat * 4, get("/api/v1/health/")) * 1000
    return [
        Figure(
            f"GET /admin/ (overview), {releases:,} releases, {findings:,} open findings, superuser: mean",
            overview,
            "ms",
            goal=Goal("<", 100, " ms"),
            note=f"{len(queries)} queries",
        ),
        Figure("the overview / GET /api/v1/health/ (trivial DRF)", overview, "ms", health),
        Figure("GET /admin/overview/live/ (polled every 2 s): mean", live, "ms"),
    ]


if __name__ == "__main__":
    main(run)
