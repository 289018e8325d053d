"""``GET /api/v1/changelog/?from=&to=`` over 10,000 releases with realistic Release Please notes.

Everything is measured in one process against the trivial DRF endpoint ``/api/v1/health/`` in the
same run (these 2-core machines are noisy), through Django's full request handling (middleware,
DRF, rendering; no network). Uses its own PostgreSQL database (``bench_changelog_range``,
recreated), so it never touches test or production data. Figures and goals:

- the whole span without ``?page=``: refused (400) after one ``COUNT``, cost / health (goal <= 10x);
- one page of 100 releases, first request (cache cleared before each): ms (goal < 50 ms), and the
  walk over every page of the span;
- the same page, cached (the generation lookup and the stored body): rate / health (goal >= 0.25x);
- stored vs re-parse: one page's sections as JSON, built from the stored forms against parsing
  and merging its 100 releases' markdown as the endpoint did before (goal >= 3x), and the whole
  span re-parsed once (what one anonymous request cost before, now refused).

Run: .venv/bin/python bench/changelog_range.py [--releases 10000] [--repeat 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._database import use_database  # noqa: E402
from bench.changelog_parse import synthetic_changelog  # noqa: E402


def mean_seconds(repeat: int, request: Callable[[], object]) -> float:
    request()  # warm
    started = time.perf_counter()
    for _ in range(repeat):
        request()
    return (time.perf_counter() - started) / repeat


def seed(count: int) -> tuple[list[str], float]:
    """Insert ``count`` releases with their stored forms; answers (versions, write-time parse per release)."""
    from django.db import connection

    from releases.changelog import split_changelog, stored_forms
    from releases.models import ReleaseVersion
    from releases.versions import column_sort_key

    notes = [n for n in split_changelog(synthetic_changelog(count)) if n.version][::-1]  # oldest first
    started = time.perf_counter()
    rows = []
    for release in notes:
        parsed, html = stored_forms(release.markdown)
        rows.append(
            ReleaseVersion(
                version=release.version,
                version_order=column_sort_key(release.version),
                commit_sha="a" * 40,
                changelog=release.markdown,
                parsed_changelog=parsed,
                changelog_html=html,
            )
        )
    per_release = (time.perf_counter() - started) / len(rows)
    ReleaseVersion.objects.bulk_create(rows, batch_size=1000)
    with connection.cursor() as cursor:  # as autovacuum would have by now: plans see 10,000 rows
        cursor.execute("ANALYZE releases_releaseversion")
    return [n.version for n in notes], per_release


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    use_database("bench_changelog_range", redis_db=12, ALLOWED_HOSTS="testserver")
    logging.getLogger("django.request").setLevel(logging.ERROR)  # the refused requests are expected
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client

    versions, write_parse = seed(args.releases)
    cap = settings.CHANGELOG_RANGE_MAX_RELEASES
    low, high = "0.0.0", versions[-1]
    span = f"/api/v1/changelog/?from={low}&to={high}"
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
    health = mean_seconds(args.repeat, lambda: get("/api/v1/health/"))
    refused = mean_seconds(args.repeat, lambda: get(span, 400))
    uncached = mean_seconds(max(10, args.repeat // 4), first_page)
    cached = mean_seconds(args.repeat, lambda: get(f"{span}&page=1"))

    cache.clear()
    started, url, pages = time.perf_counter(), f"{span}&page=1", 0
    while url:
        url, pages = get(url).json()["next"], pages + 1
        url = url and url.removeprefix("http://testserver")
    walk = time.perf_counter() - started

    # Equal as JSON values (jsonb keeps its own key order, so not as strings).
    assert json.loads(page_body_stored(cap)) == page_one["sections"], "the endpoint and its stored forms differ"
    assert json.loads(page_body_reparsed(cap)) == page_one["sections"], "stored and re-parsed sections differ"
    stored_page = mean_seconds(20, lambda: page_body_stored(cap))
    reparse_page = mean_seconds(20, lambda: page_body_reparsed(cap))
    started = time.perf_counter()
    page_body_reparsed(len(versions))
    reparse_span = time.perf_counter() - started

    def line(label: str, seconds: float) -> str:
        return f"{label:<52} {seconds * 1000:9.2f} ms  {1 / seconds:9.1f} req/s  {health / seconds:6.2f}x health"

    size = len(get(f"{span}&page=1").content) / 1024
    print(f"releases: {len(versions)}, page of {cap} releases: {entries} entries, {size:.0f} KiB of JSON")
    print(f"write-time parse + render per release:               {write_parse * 1000:9.2f} ms")
    print(line("GET /api/v1/health/ (baseline)", health))
    print(line("whole span, no ?page= (400, refused)", refused) + "   goal cost <= 10x health")
    print(line(f"page 1 of {cap}, first request (cache cleared)", uncached) + "   goal < 50 ms")
    print(line(f"page 1 of {cap}, cached", cached) + "   goal >= 0.25x")
    print(f"walk of the whole span, {pages} pages, uncached:        {walk:9.2f} s")
    print(
        f"one page's sections as JSON: stored {stored_page * 1000:.1f} ms vs re-parse {reparse_page * 1000:.1f} ms"
        f" = {reparse_page / stored_page:.1f}x (goal >= 3x)"
    )
    print(
        f"whole span re-parsed (what one anonymous request cost before): {reparse_span:.2f} s = "
        f"{reparse_span / uncached:.0f}x one page now, {reparse_span / refused:.0f}x the refusal"
    )


if __name__ == "__main__":
    main()
