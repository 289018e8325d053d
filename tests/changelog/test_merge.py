"""merge_between / releases_between: what changed after one version up to another, by semver."""

from __future__ import annotations

import json
from datetime import date

import pytest

from releases.changelog import ReleaseNotes, merge_between, parse_release_notes, releases_between, split_changelog
from tests.changelog import fixture

RELEASES = split_changelog(fixture("threek8s_CHANGELOG.md"))  # 2.0.0, 1.10.0, 1.9.0, 1.4.0, 1.3.2, 1.0.0


def versions(releases: list[ReleaseNotes]) -> list[str | None]:
    return [r.version for r in releases]


def release(version: str, *entries: str, section: str = "Features") -> ReleaseNotes:
    bullets = "\n".join(f"* {e}" for e in entries)
    return parse_release_notes(f"## {version}\n\n### {section}\n\n{bullets}\n")


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        ("1.0.0", "1.4.0", ["1.4.0", "1.3.2"]),  # from exclusive, to inclusive
        ("1.4.0", "1.10.0", ["1.10.0", "1.9.0"]),  # semver, not string order ("1.9.0" > "1.10.0" as text)
        ("1.9.0", "1.10.0", ["1.10.0"]),
        ("1.3.2", "2.0.0", ["2.0.0", "1.10.0", "1.9.0", "1.4.0"]),
        ("1.4.0", "1.4.0", []),  # empty range
        ("1.1.0", "1.2.0", []),  # bounds need not be releases
        ("1.0.1", "1.5.0", ["1.4.0", "1.3.2"]),
        (None, "1.3.2", ["1.3.2", "1.0.0"]),  # open start: everything up to 1.3.2
        ("1.9.0", None, ["2.0.0", "1.10.0"]),  # open end
        (None, None, ["2.0.0", "1.10.0", "1.9.0", "1.4.0", "1.3.2", "1.0.0"]),
        ("v1.4.0", "v1.10.0", ["1.10.0", "1.9.0"]),  # a leading v is accepted
        ("0.0.1", "1.0.0", ["1.0.0"]),
    ],
)
def test_releases_between(low: str | None, high: str | None, expected: list[str]) -> None:
    assert versions(releases_between(RELEASES, low, high)) == expected
    assert versions(releases_between(list(reversed(RELEASES)), low, high)) == expected  # input order does not matter


def test_prereleases_order_by_semver() -> None:
    rels = [release(v, f"in {v}") for v in ["1.0.0", "2.0.0-rc.1", "2.0.0", "2.0.0-rc.10", "2.0.0-rc.2", "2.0.0-beta"]]
    assert versions(releases_between(rels, "1.0.0", "2.0.0")) == [
        "2.0.0",
        "2.0.0-rc.10",
        "2.0.0-rc.2",
        "2.0.0-rc.1",
        "2.0.0-beta",
    ]
    assert versions(releases_between(rels, "2.0.0-rc.1", "2.0.0-rc.10")) == ["2.0.0-rc.10", "2.0.0-rc.2"]


def test_unversioned_releases_are_skipped_and_ties_keep_order() -> None:
    rels = [
        parse_release_notes("### Features\n\n* no version\n"),
        release("1.1.0", "first 1.1.0"),
        release("1.1.0+build.2", "second 1.1.0"),  # build metadata: same precedence
    ]
    merged = merge_between(rels, "1.0.0", "1.1.0")
    assert [(e.version, e.entry.description) for e in merged[0].entries] == [
        ("1.1.0", "first 1.1.0"),
        ("1.1.0+build.2", "second 1.1.0"),
    ]


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        ("1.10.0", "1.9.0", "newer than"),
        ("1.4", "2.0.0", "from_version"),
        ("1.0.0", "latest", "to_version"),
    ],
)
def test_bad_bounds(low: str, high: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge_between(RELEASES, low, high)


def test_merge_between_groups_per_section() -> None:
    merged = merge_between(RELEASES, "1.4.0", "2.0.0")
    assert [(s.kind, s.title) for s in merged] == [
        ("breaking-changes", "⚠ BREAKING CHANGES"),
        ("features", "Features"),
        ("bug-fixes", "Bug Fixes"),
        ("performance-improvements", "Performance Improvements"),
        ("code-refactoring", "Code Refactoring"),  # unknown kinds after Release Please's own
    ]
    features = merged[1]
    assert [(e.version, e.entry.scope, e.entry.description) for e in features.entries] == [
        ("2.0.0", "api", "drop the v0 endpoints"),
        ("2.0.0", "helm", "support several ingress hosts"),
        ("2.0.0", "frontend", "namespace filter on the cluster view"),
        ("1.10.0", "frontend", "pod log viewer"),
        ("1.9.0", "backend", "metrics endpoint for Prometheus"),
    ]
    assert [(e.version, e.entry.description) for e in merged[2].entries] == [
        ("2.0.0", "close informer watches on shutdown"),
        ("1.10.0", "update kubernetes client to v0.31.2"),
        ("1.10.0", merged[2].entries[2].entry.description),
    ]
    assert merged[2].entries[2].entry.description.startswith("reconnect the websocket after a timeout\n")
    data = json.loads(json.dumps([s.to_dict() for s in merged]))
    assert data[1]["entries"][0]["version"] == "2.0.0"
    assert data[1]["entries"][0]["prs"] == [{"number": 128, "url": "https://github.com/stianfro/threek8s/issues/128"}]


def test_merge_between_excludes_from_and_includes_to() -> None:
    merged = merge_between(RELEASES, "1.0.0", "1.4.0")
    assert {e.version for s in merged for e in s.entries} == {"1.4.0", "1.3.2"}
    assert [s.kind for s in merged] == ["breaking-changes", "features", "bug-fixes"]
    assert merge_between(RELEASES, "2.0.0", None) == []


def test_titles_come_from_the_newest_release_and_kinds_merge() -> None:
    rels = [
        release("1.2.0", "newer chore", section="Miscellaneous"),
        release("1.1.0", "older chore", section="Miscellaneous Chores"),
        release("1.0.5", "a fix", section="🐛 Bug Fixes"),
    ]
    merged = merge_between(rels, "1.0.0", "1.2.0")
    assert [(s.kind, s.title, [e.entry.description for e in s.entries]) for s in merged] == [
        ("bug-fixes", "🐛 Bug Fixes", ["a fix"]),
        ("miscellaneous", "Miscellaneous", ["newer chore", "older chore"]),
    ]


def test_component_is_carried() -> None:
    rel = parse_release_notes("## [frontend-v1.2.0](https://h/compare) (2026-12-01)\n\n### Features\n\n* x\n")
    assert (rel.version, rel.component, rel.date) == ("1.2.0", "frontend", date(2026, 12, 1))
    [section] = merge_between([rel], "1.0.0", "1.2.0")
    assert section.entries[0].component == "frontend"
    assert section.entries[0].to_dict()["component"] == "frontend"
