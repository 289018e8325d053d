"""``GET /api/v1/changelog/?from=&to=`` over 10,000 releases with realistic Release Please notes.

Everything is measured in one process against the trivial DRF endpoint ``/api/v1/health/`` in the
same run (these 2-core machines are noisy), through Django's full request handling (middleware,
DRF, rendering; no network). Its own PostgreSQL database (``bench_changelog_range``, recreated),
seeded through ``bench/_seed.py`` with the stored forms ``create_release`` writes. Figures and goals:

- the whole span without ``?page=``: refused (400) after one ``COUNT``, cost / health (goal <= 10x);
- one page of 100 releases, first request (cache cleared before each): ms (goal < 50 ms), and the
  walk over every page of the span;
- the same page, cached (the generation lookup and the stored body): rate / health (goal >= 0.25x);
- stored vs re-parse: one page's sections as JSON, built from the stored forms against parsing
  and merging its 100 releases' markdown as the endpoint did before (goal >= 3x, near the noise:
  ``EDGE_ROUNDS`` paired rounds, their spread reported), and the whole span re-parsed once (what
  one anonymous request cost before, now refused).

Quick mode: 300 releases, 5 requests each.

Run: .venv/bin/python -m bench.changelog_range [--quick]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._database import use_database  # noqa: E402
from bench.changelog_parse import synthetic_changelog  # noqa: E402
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, mean_seconds, ratio_figure, rounds  # noqa: E402


def page_body_stored(cap: int) -> str:
    """One page's sections as the endpoint builds them now: stored forms, merged, as JSON."""
    from releases.changelog import merge_stored
    from releases.models import ReleaseVersion

    rows = ReleaseVersion.objects.order_by("version_order").values_list("version", "parsed_changelog")[:cap]
    return json.dumps(merge_stored(rows))


def page_body_reparsed(cap: int) -> str:
    """The same page as the endpoint built it before: parse every release's markdown, merge, as JSON."""
    from releases.changelog import merge_between, parse_release_notes
    from releases.models import ReleaseVersion

    rows = ReleaseVersion.objects.order_by("version_order").values_list("version", "changelog", "release_notes")
    notes = [
        dataclasses.replace(parse_release_notes(changelog or release_notes), version=version)
        for version, changelog, release_notes in rows[:cap]
    ]
    return json.dumps([s.to_dict() for s in merge_between(notes, None, None, newest_first=False)])


def run(quick: bool) -> list[Figure]:
    releases, repeat = (300, 5) if quick else (10_000, 200)
    use_database("changelog_range", redis_db=12)
    logging.getLogger("django.request").setLevel(logging.ERROR)  # the refused requests are expected
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client

    from bench._seed import releases_with_changelogs

    versions, write_parse = releases_with_changelogs(synthetic_changelog(releases))
    cap = settings.CHANGELOG_RANGE_MAX_RELEASES
    span = f"/api/v1/changelog/?from=0.0.0&to={versions[-1]}"
    client = Client()

    def get(url: str, status: int = 200):
        response = client.get(url)
        assert response.status_code == status, (url, response.status_code, response.content[:300])
        return response

    def first_page():
        cache.clear()
        return get(f"{span}&page=1")

    page_one = get(f"{span}&page=1").json()
    entries = sum(len(s["entries"]) for s in page_one["sections"])
    health = mean_seconds(repeat, lambda: get("/api/v1/health/")) * 1000
    refused = mean_seconds(repeat, lambda: get(span, 400)) * 1000
    uncached = mean_seconds(max(3, repeat // 4), first_page) * 1000
    cached = mean_seconds(repeat, lambda: get(f"{span}&page=1")) * 1000

    cache.clear()
    started, url, pages = time.perf_counter(), f"{span}&page=1", 0
    while url:
        url, pages = get(url).json()["next"], pages + 1
        url = url and url.removeprefix("http://testserver")
    walk = time.perf_counter() - started

    # Equal as JSON values (jsonb keeps its own key order, so not as strings).
    assert json.loads(page_body_stored(cap)) == page_one["sections"], "the endpoint and its stored forms differ"
    assert json.loads(page_body_reparsed(cap)) == page_one["sections"], "stored and re-parsed sections differ"
    # The goal sits near the noise: paired rounds, each the mean of a few calls of both ways.
    stored_page, reparse_page = [], []
    for _ in range(rounds(quick, EDGE_ROUNDS)):
        stored_page.append(mean_seconds(3 if quick else 8, lambda: page_body_stored(cap)) * 1000)
        reparse_page.append(mean_seconds(3 if quick else 8, lambda: page_body_reparsed(cap)) * 1000)
    started = time.perf_counter()
    page_body_reparsed(len(versions))
    reparse_span = (time.perf_counter() - started) * 1000

    size = len(get(f"{span}&page=1").content) / 1024
    page = f"page 1 of {cap} releases ({entries} entries, {size:.0f} KiB)"
    return [
        Figure(
            f"{len(versions):,} releases: changelog/?from=&to= whole span, no page (400) / GET /api/v1/health/",
            refused,
            "ms",
            health,
            Goal("<=", 10),
        ),
        Figure(f"{page}, first request (cache cleared)", uncached, "ms", goal=Goal("<", 50, " ms")),
        Figure(
            f"{page}, cached: rate / health/ rate",
            1000 / cached,
            "req/s",
            1000 / health,
            Goal(">=", 0.25),
        ),
        ratio_figure(
            "one page's sections as JSON: re-parsing the markdown (the old endpoint) / stored forms",
            reparse_page,
            stored_page,
            "ms",
            Goal(">=", 3),
        ),
        Figure(
            "the whole span re-parsed (what one anonymous request cost before, now refused) / the refusal",
            reparse_span,
            "ms",
            refused,
        ),
        Figure(f"walk of the whole span, {pages} pages, uncached", walk, "s"),
        Figure("write-time parse + render per release", write_parse * 1000, "ms"),
    ]


if __name__ == "__main__":
    main(run)
