"""Changelog reads cost no markdown parsing: one release and a range of them are served from the
forms stored when the notes were written; a range is capped, paged and cached per generation."""

from __future__ import annotations

import dataclasses

import pytest
from rest_framework.test import APIClient

from releases.changelog import merge_between, parse_release_notes
from releases.models import ReleaseVersion
from tests.fixtures.factories import make_release

pytestmark = pytest.mark.django_db

REPO = "https://github.com/o/r"


def rich_notes(version: str, index: int) -> str:
    """Release Please notes with the shapes the merge cares about: components, breaking changes,
    scopes, references, an unknown section kind, and an empty section."""
    heading = f"## [{version}]({REPO}/compare/v0...v{version}) (2026-11-20)"
    if index % 3 == 0:
        heading = f"## [frontend: {version}]({REPO}/compare/v0...v{version}) (2026-11-20)"
    text = f"{heading}\n\n### ⚠ BREAKING CHANGES\n\n* **api:** drop v{index} ([#{index}]({REPO}/issues/{index}))\n"
    text += f"\n### Features\n\n* **ui:** dark mode {index} ([{index:07x}]({REPO}/commit/{index:040x}))\n"
    text += "* plain feature, closes #12\n"
    if index % 2:
        text += f"\n### Bug Fixes\n\n* crash <b>{index}</b> on start\n"
    if index % 4 == 1:
        text += "\n### Chores Of Our Own\n\n* tidy up\n\n### Documentation\n\n"
    return text


def parse_and_merge(low: str, high: str) -> list[dict]:
    """What the range endpoint answered before it served stored forms: parse every release's
    markdown on the request and merge."""
    releases = ReleaseVersion.objects.order_by("version_order")
    notes = [dataclasses.replace(parse_release_notes(r.notes_markdown), version=r.version) for r in releases]
    return [s.to_dict() for s in merge_between(notes, low, high, newest_first=False)]


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def ten_releases() -> list[str]:
    versions = [f"1.{minor}.0" for minor in range(10)]
    for index, version in enumerate(versions):
        make_release(version, changelog=rich_notes(version, index))
    return versions


def test_range_answers_the_same_sections_as_parsing_the_markdown(api, ten_releases):
    body = api.get("/api/v1/changelog/?from=1.1.0&to=1.9.0").json()

    assert body["versions"] == [f"1.{minor}.0" for minor in range(2, 10)]
    assert body["sections"] == parse_and_merge("1.1.0", "1.9.0")
    assert [s["kind"] for s in body["sections"]][:3] == ["breaking-changes", "features", "bug-fixes"]
    assert {e["component"] for e in body["sections"][0]["entries"]} == {"frontend", None}


def test_range_is_served_from_the_stored_forms_without_parsing(api, ten_releases, django_assert_max_num_queries):
    # Given stored sections that differ from what the markdown would parse to
    ReleaseVersion.objects.filter(version="1.5.0").update(
        parsed_changelog={"component": None, "sections": [{"title": "Stored", "kind": "stored", "entries": [{}]}]}
    )

    # When the range is read: the generation, the count and one page of rows, nothing per release
    with django_assert_max_num_queries(3):
        body = api.get("/api/v1/changelog/?from=1.4.0&to=1.5.0").json()

    # Then the stored form is what was served
    assert body["sections"] == [
        {"title": "Stored", "kind": "stored", "entries": [{"version": "1.5.0", "component": None}]}
    ]


def test_range_past_the_cap_is_refused_naming_the_cap(api, ten_releases, settings):
    settings.CHANGELOG_RANGE_MAX_RELEASES = 4

    response = api.get("/api/v1/changelog/?from=1.0.0&to=1.9.0")

    assert response.status_code == 400
    message = response.json()["range"][0]
    assert "holds more than 4 releases" in message
    assert "CHANGELOG_RANGE_MAX_RELEASES" in message
    assert "narrow the range or page" in message
    assert api.get("/api/v1/changelog/?from=1.0.0&to=1.4.0").status_code == 200  # exactly at the cap


def test_range_pages_through_a_wide_range(api, ten_releases, settings):
    settings.CHANGELOG_RANGE_MAX_RELEASES = 4
    seen, url = [], "/api/v1/changelog/?from=1.0.0&to=1.9.0&page=1"
    while url:
        body = api.get(url).json()
        assert body["count"] == 9
        assert len(body["versions"]) <= 4
        assert body["sections"] == merge_expected(body["versions"])
        seen += body["versions"]
        url = body["next"]
    assert seen == [f"1.{minor}.0" for minor in range(1, 10)]
    assert "page=2" in api.get("/api/v1/changelog/?from=1.0.0&to=1.9.0&page=3").json()["previous"]

    too_big = api.get("/api/v1/changelog/?from=1.0.0&to=1.9.0&page=1&page_size=5")
    assert too_big.status_code == 400
    assert "at most 4 releases per page" in too_big.json()["page_size"][0]
    assert api.get("/api/v1/changelog/?from=1.0.0&to=1.9.0&page=4").status_code == 404
    assert api.get("/api/v1/changelog/?from=1.0.0&to=1.9.0&page=0").status_code == 400


def merge_expected(versions: list[str]) -> list[dict]:
    releases = ReleaseVersion.objects.filter(version__in=versions).order_by("version_order")
    notes = [dataclasses.replace(parse_release_notes(r.notes_markdown), version=r.version) for r in releases]
    return [s.to_dict() for s in merge_between(notes, None, None, newest_first=False)]


def test_cached_range_is_never_stale(api, ten_releases, django_assert_max_num_queries):
    url = "/api/v1/changelog/?from=1.0.0&to=2.0.0"
    first = api.get(url)
    with django_assert_max_num_queries(1):  # the generation only
        again = api.get(url)
    assert again.content == first.content
    assert api.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304

    make_release("2.0.0", changelog=rich_notes("2.0.0", 1))

    fresh = api.get(url)
    assert fresh["ETag"] != first["ETag"]
    assert fresh.json()["versions"][-1] == "2.0.0"


def test_one_release_is_served_from_its_stored_forms(api):
    release = make_release("1.2.0", changelog=rich_notes("1.2.0", 1))
    assert release.parsed_changelog["sections"] == parse_release_notes(release.changelog).to_dict()["sections"]
    ReleaseVersion.objects.filter(pk=release.pk).update(
        parsed_changelog={"component": None, "sections": ["stored"]}, changelog_html="<p>stored</p>"
    )

    assert api.get("/api/v1/releases/1.2.0/changelog/?format=json").json()["sections"] == ["stored"]
    assert api.get("/api/v1/releases/1.2.0/changelog/?format=html").json()["html"] == "<p>stored</p>"


def test_changed_notes_are_rendered_again_when_saved():
    release = make_release("1.2.0", changelog=rich_notes("1.2.0", 1))
    release = ReleaseVersion.objects.get(pk=release.pk)

    release.changelog = "## 1.2.0\n\n### Features\n\n* edited <script>x</script>\n"
    release.save(update_fields=["changelog"])

    stored = ReleaseVersion.objects.get(pk=release.pk)
    assert [e["description"] for e in stored.parsed_changelog["sections"][0]["entries"]] == [
        "edited <script>x</script>"
    ]
    assert "edited" in stored.changelog_html and "<script>" not in stored.changelog_html
