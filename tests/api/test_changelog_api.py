"""Changelogs over the API: one release as JSON sections, markdown or sanitized HTML; and what
changed between two versions, in semantic-version order."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.fixtures.factories import make_release

pytestmark = pytest.mark.django_db


def notes(version: str, feature: str, fix: str | None = None) -> str:
    text = (
        f"## [{version}](https://github.com/o/r/compare/v0...v{version}) (2026-11-20)\n\n### Features\n\n* {feature}\n"
    )
    if fix:
        text += f"\n### Bug Fixes\n\n* {fix} ([#7](https://github.com/o/r/issues/7))\n"
    return text


@pytest.fixture
def api():
    return APIClient()


def test_changelog_as_sections_markdown_and_html(api):
    make_release("1.2.0", changelog=notes("1.2.0", "dark mode", "crash <script>alert(1)</script> on start"))

    sections = api.get("/api/v1/releases/1.2.0/changelog/").json()["sections"]
    assert [s["title"] for s in sections] == ["Features", "Bug Fixes"]
    assert sections[1]["entries"][0]["prs"][0]["number"] == 7

    markdown = api.get("/api/v1/releases/1.2.0/changelog/?format=markdown").json()["markdown"]
    assert markdown.startswith("## [1.2.0]")

    html = api.get("/api/v1/releases/1.2.0/changelog/?format=html").json()["html"]
    assert "<h3>Features</h3>" in html
    assert "<script>" not in html


def test_changelog_answers_etags_and_refuses_unknown_formats(api):
    make_release("1.2.0", changelog=notes("1.2.0", "dark mode"))
    first = api.get("/api/v1/releases/1.2.0/changelog/")
    assert api.get("/api/v1/releases/1.2.0/changelog/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    bad = api.get("/api/v1/releases/1.2.0/changelog/?format=pdf")
    assert bad.status_code == 400
    assert "use one of" in bad.json()["format"][0]


def test_changes_between_versions_follow_semver_not_strings(api):
    for version in ("1.0.0", "1.2.0", "1.9.0", "1.10.0", "2.0.0"):
        make_release(version, changelog=notes(version, f"feature of {version}"))

    body = api.get("/api/v1/changelog/?from=1.2.0&to=1.10.0").json()

    assert body["versions"] == ["1.9.0", "1.10.0"]
    entries = body["sections"][0]["entries"]
    assert [(e["version"], e["description"]) for e in entries] == [
        ("1.9.0", "feature of 1.9.0"),
        ("1.10.0", "feature of 1.10.0"),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=1.0&to=1.2.0", "from"),
        ("from=1.0.0", "to"),
        ("from=2.0.0&to=1.0.0", "to"),
        ("from=1.0.0&to=1.0.0-" + "a" * 194, "to"),
    ],
)
def test_changes_between_refuses_bad_bounds(api, query, field):
    response = api.get(f"/api/v1/changelog/?{query}")
    assert response.status_code == 400
    assert field in response.json()
