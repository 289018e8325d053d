"""parse_release_notes / split_changelog on realistic Release Please changelogs and on odd markdown."""

from __future__ import annotations

import json
import random
import textwrap
import time
from datetime import date

import pytest

from releases.changelog import CommitRef, PrRef, ReleaseNotes, parse_release_notes, section_kind, split_changelog
from tests.changelog import R, fixture

# The release from the brief, as Release Please writes it (two blank lines after the heading included).
RELEASE_1_4_0 = f"""\
## [1.4.0]({R}/compare/v1.3.2...v1.4.0) (2026-11-20)


### ⚠ BREAKING CHANGES

* **api:** drop the v0 endpoints ([#88]({R}/issues/88)) ([1a2b3c4]({R}/commit/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b))

### Features

* **frontend:** cluster overview page ([#12]({R}/issues/12)) ([9f8e7d6]({R}/commit/9f8e7d6))
* add dark mode ([5d6e7f8]({R}/commit/5d6e7f8))
* **api:** drop the v0 endpoints ([#88]({R}/issues/88)) ([1a2b3c4]({R}/commit/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b))

### Bug Fixes

* reconnect the websocket after a timeout ([#14]({R}/issues/14)) ([9a0b1c2]({R}/commit/9a0b1c2))
"""


def summary(notes: ReleaseNotes) -> list[tuple[str, list[tuple[str | None, str, bool]]]]:
    return [(s.kind, [(e.scope, e.description, e.breaking) for e in s.entries]) for s in notes.sections]


def test_release_from_the_brief() -> None:
    notes = parse_release_notes(RELEASE_1_4_0)
    assert notes.version == "1.4.0"
    assert notes.component is None
    assert notes.date == date(2026, 11, 20)
    assert notes.compare_url == f"{R}/compare/v1.3.2...v1.4.0"
    assert [s.title for s in notes.sections] == ["⚠ BREAKING CHANGES", "Features", "Bug Fixes"]
    assert summary(notes) == [
        ("breaking-changes", [("api", "drop the v0 endpoints", True)]),
        (
            "features",
            [
                ("frontend", "cluster overview page", False),
                (None, "add dark mode", False),
                ("api", "drop the v0 endpoints", True),  # same commit as the breaking change
            ],
        ),
        ("bug-fixes", [(None, "reconnect the websocket after a timeout", False)]),
    ]
    breaking = notes.sections[0].entries[0]
    assert breaking.prs == [PrRef(88, f"{R}/issues/88")]
    # the link carries the full sha: keep it
    assert breaking.commits == [
        CommitRef("1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", f"{R}/commit/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b")
    ]
    assert breaking.text == RELEASE_1_4_0.splitlines()[5]
    assert notes.has_breaking_changes
    assert notes.section("bug-fixes") is notes.sections[2]
    assert notes.section("reverts") is None
    assert notes.markdown == RELEASE_1_4_0.rstrip("\n")


def test_to_dict_is_json() -> None:
    data = json.loads(json.dumps(parse_release_notes(RELEASE_1_4_0).to_dict()))
    assert data["version"] == "1.4.0"
    assert data["date"] == "2026-11-20"
    entry = data["sections"][1]["entries"][0]
    assert entry == {
        "scope": "frontend",
        "description": "cluster overview page",
        "breaking": False,
        "prs": [{"number": 12, "url": f"{R}/issues/12"}],
        "commits": [{"sha": "9f8e7d6", "url": f"{R}/commit/9f8e7d6"}],
        "closes": [],
        "text": f"* **frontend:** cluster overview page ([#12]({R}/issues/12)) ([9f8e7d6]({R}/commit/9f8e7d6))",
    }


@pytest.mark.parametrize(
    ("heading", "version", "component", "day", "url"),
    [
        (f"## [1.4.0]({R}/compare/v1.3.2...v1.4.0) (2026-11-20)", "1.4.0", None, date(2026, 11, 20), True),
        ("## 1.0.0 (2026-11-26)", "1.0.0", None, date(2026, 11, 26), False),
        (f"### [1.3.2]({R}/compare/v1.3.1...v1.3.2) (2026-11-10)", "1.3.2", None, date(2026, 11, 10), True),
        (f"## [v1.4.0]({R}/compare/v1.3.2...v1.4.0) (2026-11-20)", "1.4.0", None, date(2026, 11, 20), True),
        (f"## [threek8s-v1.4.0]({R}/compare/a...b) (2026-11-20)", "1.4.0", "threek8s", date(2026, 11, 20), True),
        ("## frontend: 1.2.0 (2026-12-01)", "1.2.0", "frontend", date(2026, 12, 1), False),
        ("## @threek8s/shared@1.1.0", "1.1.0", "@threek8s/shared", None, False),
        ("## [1.4.0] - 2026-11-20", "1.4.0", None, date(2026, 11, 20), False),  # keep-a-changelog
        ("## Version 1.4.0", "1.4.0", None, None, False),
        ("## 1.5.0-rc.1 (2026-12-24)", "1.5.0-rc.1", None, date(2026, 12, 24), False),
        ("# 1.0.0", "1.0.0", None, None, False),
        ("## 1.0.0 (2026-13-45)", "1.0.0", None, None, False),  # impossible date: None, version kept
        ("## [1.0.0](javascript:alert(1)) (2026-11-26)", "1.0.0", None, date(2026, 11, 26), False),
        ("## [1.0.0](ftp://example.com/x)", "1.0.0", None, None, False),  # only http(s) URLs are kept
        ("## 1.0.0 ##", "1.0.0", None, None, False),  # closing hashes
    ],
)
def test_release_headings(heading: str, version: str, component: str | None, day: date | None, url: bool) -> None:
    notes = parse_release_notes(heading + "\n\n### Features\n\n* a thing\n")
    assert (notes.version, notes.component, notes.date) == (version, component, day)
    assert (notes.compare_url is not None) == url
    assert summary(notes) == [("features", [(None, "a thing", False)])]


@pytest.mark.parametrize(
    "heading",
    [
        "## [Unreleased]",
        "## Upgrading to 2.0.0",
        "## 1.4",
        "## v01.2.3",
        "#### 1.0.0",  # too deep for a release heading: a section
        "##1.0.0",  # not a heading
        "    ## 1.0.0",  # indented code
    ],
)
def test_not_release_headings(heading: str) -> None:
    assert parse_release_notes(heading + "\n\n* a thing\n").version is None
    assert split_changelog("# Changelog\n\n" + heading + "\n\n* a thing\n") == []


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("⚠ BREAKING CHANGES", "breaking-changes"),
        ("BREAKING CHANGES", "breaking-changes"),
        ("Features", "features"),
        ("Bug Fixes", "bug-fixes"),
        ("🐛 Bug Fixes", "bug-fixes"),
        ("Performance Improvements", "performance-improvements"),
        ("Reverts", "reverts"),
        ("Documentation", "documentation"),
        ("Miscellaneous Chores", "miscellaneous"),
        ("Miscellaneous", "miscellaneous"),
        ("Dependencies", "dependencies"),
        ("Code Refactoring", "code-refactoring"),
        ("Build System", "build-system"),
        ("What's Changed", "what-s-changed"),
        ("Sécurité", "securite"),
        ("🚀", "other"),
    ],
)
def test_section_kinds(title: str, kind: str) -> None:
    assert section_kind(title) == kind
    notes = parse_release_notes(f"## 1.0.0\n\n### {title}\n\n* x\n")
    assert [(s.title, s.kind) for s in notes.sections] == [(title, kind)]


@pytest.mark.parametrize(
    ("line", "scope", "description", "prs", "commits", "closes"),
    [
        ("* plain", None, "plain", [], [], []),
        ("- dash bullet", None, "dash bullet", [], [], []),
        ("+ plus bullet", None, "plus bullet", [], [], []),
        ("* **api:** scoped", "api", "scoped", [], [], []),
        ("* **api**: scoped the other way", "api", "scoped the other way", [], [], []),
        ("* **ui, api:** two scopes", "ui, api", "two scopes", [], [], []),
        (f"* x ([#5]({R}/issues/5))", None, "x", [PrRef(5, f"{R}/issues/5")], [], []),
        (f"* x ([#5]({R}/pull/5))", None, "x", [PrRef(5, f"{R}/pull/5")], [], []),
        ("* x (#5)", None, "x", [PrRef(5)], [], []),
        (
            "* x ([abcdef0](https://h/o/r/commit/abcdef0))",
            None,
            "x",
            [],
            [CommitRef("abcdef0", "https://h/o/r/commit/abcdef0")],
            [],
        ),
        ("* x (abc1234)", None, "x", [], [CommitRef("abc1234")], []),
        (
            "* x ([ABC1234](https://h/commit/abc1234ff))",
            None,
            "x",
            [],
            [CommitRef("abc1234ff", "https://h/commit/abc1234ff")],
            [],
        ),
        (
            "* x ([#5](https://h/5), [#6](https://h/6))",
            None,
            "x",
            [PrRef(5, "https://h/5"), PrRef(6, "https://h/6")],
            [],
            [],
        ),
        ("* x ([stianfro/other#7](https://h/7))", None, "x", [PrRef(7, "https://h/7")], [], []),
        ("* x ([#5](javascript:alert))", None, "x", [PrRef(5, None)], [], []),
        ('* x ([#5](https://h/5"onclick=alert))', None, "x", [PrRef(5, None)], [], []),
        ("* fix x (abc1234), closes #12 #13", None, "fix x", [], [CommitRef("abc1234")], [PrRef(12), PrRef(13)]),
        ("* fix x, fixes #12, #13", None, "fix x", [], [], [PrRef(12), PrRef(13)]),
        (
            "* feat: y by @alice in https://github.com/o/r/pull/30",
            None,
            "feat: y",
            [PrRef(30, "https://github.com/o/r/pull/30")],
            [],
            [],
        ),
        ("* y in https://github.com/o/r/pull/31", None, "y", [PrRef(31, "https://github.com/o/r/pull/31")], [], []),
        # not references: kept in the description
        (
            "* add docs ([guide](https://example.com/guide))",
            None,
            "add docs ([guide](https://example.com/guide))",
            [],
            [],
            [],
        ),
        ("* handle (defaced) input", None, "handle (defaced) input", [], [], []),
        ("* support #5 in the middle", None, "support #5 in the middle", [], [], []),
        ("* closes nothing #5x", None, "closes nothing #5x", [], [], []),
        ("* glued groups (#5)(#6)", None, "glued groups", [PrRef(5), PrRef(6)], [], []),
        ("*", None, "", [], [], []),
    ],
)
def test_entries(
    line: str,
    scope: str | None,
    description: str,
    prs: list[PrRef],
    commits: list[CommitRef],
    closes: list[PrRef],
) -> None:
    notes = parse_release_notes(f"## 1.0.0\n\n### Features\n\n{line}\n")
    [entry] = notes.sections[0].entries
    assert (entry.scope, entry.description, entry.prs, entry.commits, entry.closes) == (
        scope,
        description,
        prs,
        commits,
        closes,
    )
    assert entry.text == line


@pytest.mark.parametrize(
    ("body", "descriptions"),
    [
        # indented continuation lines belong to the entry, dedented
        ("* a ([#1](https://h/1))\n  more about a\n  and more\n* b", ["a\nmore about a\nand more", "b"]),
        # lazy continuation (unindented, no blank line before): conventional-changelog breaking-change bodies
        (
            "* the v0 endpoints are removed.\nClients must move.\n* b",
            ["the v0 endpoints are removed.\nClients must move.", "b"],
        ),
        # a blank line then indented text: still the entry, paragraph break kept
        ("* a\n\n  body of a\n\n* b", ["a\n\nbody of a", "b"]),
        # a blank line then unindented text: the entry ends, the text is section notes
        ("* a\n\nfree text\n* b", ["a", "b"]),
        # nested lists (Release Please node-workspace dependencies)
        (
            "* The following workspace dependencies were updated\n  * dependencies\n    * @x/shared bumped to 1.1.0",
            ["The following workspace dependencies were updated\n* dependencies\n  * @x/shared bumped to 1.1.0"],
        ),
        # refs at the end of the first line, body below
        ("* a ([#1](https://h/1)) ([abc1234](https://h/c/abc1234))\n  body", ["a\nbody"]),
        # a horizontal rule ends the entry and is not an entry
        ("* a\n* * *\n* b", ["a", "b"]),
        # ordered lists
        ("1. first\n2. second", ["first", "second"]),
        # tabs
        ("*\ttab bullet\n\tcontinued", ["tab bullet\ncontinued"]),
    ],
)
def test_multi_line_entries(body: str, descriptions: list[str]) -> None:
    notes = parse_release_notes(f"## 1.0.0\n\n### Bug Fixes\n\n{body}\n")
    assert [e.description for e in notes.sections[0].entries] == descriptions


def test_multi_line_entry_keeps_refs_and_text() -> None:
    body = "* a ([#1](https://h/1)) ([abc1234](https://h/c/abc1234))\n  body line\n"
    [entry] = parse_release_notes(f"## 1.0.0\n\n### Features\n\n{body}").sections[0].entries
    assert entry.prs == [PrRef(1, "https://h/1")]
    assert entry.commits == [CommitRef("abc1234", "https://h/c/abc1234")]
    assert entry.text == body.rstrip("\n")


def test_fenced_code_inside_an_entry_is_not_a_heading() -> None:
    code = "```md\n## 9.9.9 (2030-01-01)\n### Bug Fixes\n* nope\n```"
    body = "## 2.0.0\n\n### Features\n\n* a\n\n" + textwrap.indent(code, "  ") + "\n* b\n"
    notes = parse_release_notes(body)
    assert summary(notes) == [("features", [(None, f"a\n\n{code}", False), (None, "b", False)])]
    assert len(split_changelog(body)) == 1


def test_unclosed_fence_in_an_entry_ends_with_the_entry() -> None:
    text = "## 1.1.0\n\n### Features\n\n* a\n\n  ```\n  code\n\n## 1.0.0\n\n### Bug Fixes\n\n* b\n"
    releases = split_changelog(text)
    assert [r.version for r in releases] == ["1.1.0", "1.0.0"]
    assert [e.description for e in releases[0].entries] == ["a\n\n```\ncode"]
    assert summary(releases[1]) == [("bug-fixes", [(None, "b", False)])]


def test_unclosed_top_level_fence_runs_to_the_end() -> None:  # CommonMark, and what GitHub renders
    text = "## 1.1.0\n\n```\nstray\n\n## 1.0.0\n\n* b\n"
    assert [r.version for r in split_changelog(text)] == ["1.1.0"]


def test_top_level_fence_goes_to_notes() -> None:
    notes = parse_release_notes("## 1.0.0\n\n### Notes\n\n```\n## 1.2.3\n* not an entry\n```\n")
    assert notes.sections[0].entries == []
    assert notes.sections[0].notes == "```\n## 1.2.3\n* not an entry\n```"


def test_unknown_sections_and_free_text_are_kept() -> None:
    notes = parse_release_notes(
        "## 1.0.0\n\nIntro paragraph.\n\n### Security\n\nRead this first.\n\n* bump base image\n\n### Empty\n"
    )
    assert [(s.title, s.kind, s.notes, [e.description for e in s.entries]) for s in notes.sections] == [
        ("", "other", "Intro paragraph.", []),
        ("Security", "security", "Read this first.", ["bump base image"]),
        ("Empty", "empty", "", []),
    ]


def test_breaking_marker_in_text() -> None:
    notes = parse_release_notes("## 2.0.0\n\n### Features\n\n* **BREAKING CHANGE:** new config format\n* other\n")
    assert [(e.scope, e.description, e.breaking) for e in notes.entries] == [
        (None, "new config format", True),
        (None, "other", False),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "# Changelog\n",
        "just some text",
        "* a bullet without any heading ([#3](https://h/3))",
        "### Features\n\n* no version heading\n",
    ],
)
def test_without_release_heading(text: str) -> None:
    notes = parse_release_notes(text)
    assert notes.version is None and notes.date is None and notes.compare_url is None
    assert split_changelog(text) == []


def test_release_body_without_heading_is_parsed() -> None:
    notes = parse_release_notes("# Changelog\n\n### Features\n\n* a ([#3](https://h/3))\n")
    assert summary(notes) == [("features", [(None, "a", False)])]
    assert notes.entries.__next__().prs == [PrRef(3, "https://h/3")]


def test_only_the_first_release_is_parsed() -> None:
    notes = parse_release_notes("# Changelog\n\n## 1.1.0\n\n### Features\n\n* b\n\n## 1.0.0\n\n### Features\n\n* a\n")
    assert notes.version == "1.1.0"
    assert summary(notes) == [("features", [(None, "b", False)])]
    assert notes.markdown == "## 1.1.0\n\n### Features\n\n* b"


def test_crlf_bom_and_bytes() -> None:
    text = "\ufeff" + RELEASE_1_4_0.replace("\n", "\r\n")
    assert summary(parse_release_notes(text)) == summary(parse_release_notes(RELEASE_1_4_0))
    assert parse_release_notes(RELEASE_1_4_0.encode()).version == "1.4.0"  # type: ignore[arg-type]
    assert parse_release_notes(None).version is None  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- whole changelogs


def test_split_single_package_changelog() -> None:
    releases = split_changelog(fixture("threek8s_CHANGELOG.md"))
    assert [(r.version, r.date) for r in releases] == [
        ("2.0.0", date(2027, 2, 3)),
        ("1.10.0", date(2027, 1, 15)),
        ("1.9.0", date(2026, 12, 20)),
        ("1.4.0", date(2026, 11, 20)),
        ("1.3.2", date(2026, 11, 10)),  # "### [1.3.2]" old patch heading
        ("1.0.0", date(2026, 10, 1)),  # first release: no compare link
    ]
    assert [r.compare_url is not None for r in releases] == [True] * 5 + [False]
    for release in releases:
        assert release.markdown.splitlines()[0].lstrip("#").strip().lstrip("[").startswith(release.version or "")
        assert parse_release_notes(release.markdown) == release  # each chunk stands on its own

    v2 = releases[0]
    assert summary(v2) == [
        (
            "breaking-changes",
            [
                ("api", "the v0 endpoints are removed.\nClients must move to /api/v1 before upgrading.", True),
                ("helm", "`ingress.host` is now `ingress.hosts[]`", True),
            ],
        ),
        (
            "features",
            [
                # no refs on its breaking note, so nothing ties the two together
                ("api", "drop the v0 endpoints", False),
                ("helm", "support several ingress hosts", True),  # shares #131 / 7f3e2d1 with a breaking note
                ("frontend", "namespace filter on the cluster view", False),
            ],
        ),
        ("bug-fixes", [("backend", "close informer watches on shutdown", False)]),
    ]
    assert [s.kind for s in releases[2].sections] == ["features", "performance-improvements", "code-refactoring"]
    websocket = releases[1].sections[1].entries[1]
    assert websocket.description == (
        "reconnect the websocket after a timeout\n"
        "The client now retries with exponential backoff (1s, 2s, 4s, capped at 30s)\n"
        "and shows a banner while offline."
    )
    assert websocket.prs == [PrRef(118, f"{R}/issues/118")]
    assert websocket.commits[0].sha == "3456cdef1234abcdef1234abcdef1234abcdef12"
    assert summary(releases[-1])[-1] == ("miscellaneous", [(None, "release 1.0.0", False)])


def test_split_monorepo_component_changelog() -> None:
    releases = split_changelog(fixture("monorepo_frontend_CHANGELOG.md"))
    assert [r.version for r in releases] == ["1.2.0", "1.1.0", "1.0.1", "1.0.0"]  # "## 9.9.9" in code is no release
    assert releases[0].compare_url == f"{R}/compare/frontend-v1.1.0...frontend-v1.2.0"
    shortcuts = releases[0].sections[0].entries[1]
    assert shortcuts.description.startswith("keyboard shortcuts\n\nPress `?` to list them.")
    assert "## 9.9.9 (2030-01-01)" in shortcuts.description
    assert shortcuts.prs == [PrRef(61, f"{R}/issues/61")]
    deps = releases[0].section("dependencies")
    assert deps is not None
    assert deps.entries[0].description.endswith("* @threek8s/shared bumped from 1.0.0 to 1.1.0")
    assert [s.kind for s in releases[1].sections] == ["features", "tests"]


def test_split_hand_edited_changelog() -> None:
    releases = split_changelog(fixture("hand_edited_CHANGELOG.md"))
    # preamble and "## [Unreleased]" dropped
    assert [(r.version, r.date) for r in releases] == [
        ("0.3.0", date(2026, 3, 4)),
        ("0.2.0", None),  # (2026-13-45)
        ("0.2.0-rc.1", date(2026, 2, 1)),
        ("0.1.0", None),
    ]
    v030, v020, rc, v010 = releases
    assert [(s.kind, s.notes) for s in v030.sections] == [
        ("other", "Some intro text for the release."),
        ("bug-fixes", ""),
        ("security", ""),
    ]
    fixes = v030.sections[1].entries
    assert [(e.description, e.prs, e.closes) for e in fixes] == [
        ("fix a crash when the kubeconfig is empty", [], [PrRef(41), PrRef(42)]),
        ("handle `null` labels", [PrRef(43)], []),
    ]
    assert v030.sections[2].entries[0].description == (
        "bump the base image to address CVE-2026-1234\n\nSee the advisory for details."
    )
    assert [(e.description, [p.number for p in e.prs]) for e in v020.sections[0].entries] == [
        ("feat: add node labels", [30]),
        ("fix: typo in README", [31]),
    ]
    assert v020.sections[0].notes == f"**Full Changelog**: {R}/compare/v0.1.0...v0.2.0"
    assert rc.compare_url is None  # javascript: link dropped
    assert rc.sections[0].entries[0].prs == [PrRef(29, None)]
    assert rc.sections[0].entries[0].scope == "ui"
    assert v010.sections == [] and v010.markdown == "## 0.1.0"


def test_markdown_chunks_cover_the_file() -> None:
    text = fixture("threek8s_CHANGELOG.md")
    chunks = [r.markdown for r in split_changelog(text)]
    assert "\n\n".join(chunks) == text[text.index("## [2.0.0]") :].rstrip("\n")


# ----------------------------------------------------------------------------------------- robustness

# fragments random markdown is glued from ("|" separated to keep spaces, tabs and newlines)
_ATOM_TEXT = (
    "#|##|###| |  |\t|\n|\n\n|*|-|1.|**|**api:**|[|]|(|)|([|])|[#12](https://h/12)|([abc1234](https://h/c/abc1234))|"
    "#5|1.4.0|v2.0.0|(2026-11-20)|```|~~~|closes|,|by @x in https://h/pull/3|⚠|BREAKING CHANGE|"
    "<script>|\r|\ufeff|text|---"
)
_ATOMS = _ATOM_TEXT.split("|")


def test_random_markdown_never_raises() -> None:
    rng = random.Random(20261120)
    for _ in range(1500):
        text = "".join(rng.choice(_ATOMS) for _ in range(rng.randint(0, 80)))
        for notes in [parse_release_notes(text), *split_changelog(text)]:
            json.dumps(notes.to_dict())


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(line, id=f"hostile{index}")
        for index, line in enumerate(
            [
                "([" * 20000,
                "* " + "(#1)" * 20000,
                "* x" + " " * 50000 + "in https://h/pull/1",
                "* " + "[a](" * 20000,
                "* " + "#1, " * 20000 + "(",
                "## " + "( " * 20000,
                "## [" + "1" * 50000,
                "* **" + "a" * 50000,
                "* " + "a" * 50000 + " closes #1",
                "* " + "0" * 100000,
            ]
        )
    ],
)
def test_hostile_lines_stay_fast(line: str) -> None:
    # A ratio against an ordinary entry of the same length, parsed in the same run, so a loaded
    # machine slows both alike; catastrophic backtracking would be thousands of times slower.
    def cost(entry: str) -> float:
        text = f"## 1.0.0\n\n### Features\n\n{entry}\n" * 2
        started = time.perf_counter()
        parse_release_notes(text)
        split_changelog(text)
        return time.perf_counter() - started

    ordinary = "* " + ("fix the thing " * (len(line) // 14 + 1))[: len(line)]
    reference = max(min(cost(ordinary) for _ in range(3)), 0.005)
    # Quadratic or worse backtracking on 20,000-80,000 characters costs minutes, not 200x.
    assert min(cost(line) for _ in range(2)) < 200 * reference
