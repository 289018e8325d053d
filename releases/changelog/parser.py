"""Parse Release Please changelogs (CHANGELOG.md and GitHub release bodies) into ``ReleaseNotes``.

The parser is line based and forgiving: it never raises on odd markdown, it keeps what it does not
understand (unknown sections, free text in ``Section.notes``), and every regular expression is linear
or runs on bounded input, so hostile input cannot make it slow.

Recognised release headings (levels 1-3, outside fenced code):

* ``## [1.4.0](https://github.com/o/r/compare/v1.3.2...v1.4.0) (2026-11-20)`` (Release Please)
* ``## 1.0.0 (2026-11-26)`` (first release, no compare link)
* ``### [1.0.1](...) (date)`` (older conventional-changelog patch releases)
* ``## [v1.4.0](...)``, ``## [frontend-v1.2.0](...)``, ``## frontend@1.2.0``, ``## [1.4.0] - 2026-11-20``

Any other heading inside a release starts a section (level-1 headings such as ``# Changelog`` are
document titles and ignored).
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from .models import CommitRef, Entry, PrRef, ReleaseNotes, Section
from .sections import BREAKING_CHANGES, OTHER, section_kind
from .versions import split_version_label

_MAX_VERSION_HEADING_LEVEL = 3
_MAX_HEADING_TEXT = 500

_HTTP_URL = re.compile(r"(?i)https?://[^\s/?#\\\"'<>`]+[^\s\\\"'<>`]*")
_FENCE_OPEN = re.compile(r"[ \t]*(`{3,}|~{3,})")
_HR = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}")
_BULLET = re.compile(r"( ?)([*+-]|\d{1,9}[.)])(?:[ \t]+(.*)|[ \t]*$)")
_LINKED_LABEL = re.compile(r"\[([^\[\]\n]{1,200})\](?:\(([^()\s]*)\))?")
_LABEL_END = re.compile(r"(?<!\s)\s+[(\-\u2013\u2014]")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_VERSION_WORD = re.compile(r"(?i)(?:version|release)\s+")
_SCOPE = re.compile(r"\*\*([^*\n]{1,100}?)(?::\*\*|\*\*:)[ \t]*")
_BREAKING_WORD = re.compile(r"\bBREAKING(?:[ -]CHANGES?)?\b")
# One reference token: a markdown link, a bare #123, or a bare (short) commit sha.
_REF_TOKEN = re.compile(
    r"\[(?P<label>[^\[\]\n]{1,100})\]\((?P<url>[^()\s]*)\)"
    r"|(?P<num>(?<![\w&/#])#\d{1,9}\b)"
    r"|(?P<sha>\b[0-9a-f]{7,64}\b)"
)
_PR_LABEL = re.compile(r"(?:[\w.-]+/[\w.-]+)?#(\d{1,9})")
_SHA_LABEL = re.compile(r"[0-9a-fA-F]{7,64}")
_COMMIT_URL = re.compile(r"/commits?/([0-9a-fA-F]{7,64})(?:[/?#]|$)")
# GitHub's generated notes ("What's Changed"): "* feat: x by @someone in https://github.com/o/r/pull/12"
_PULL_IN = re.compile(r"(?<!\s)\s+in\s+(https?://[^\s()<>]+/pull/(\d{1,9}))\s*\Z")
_BY_AUTHOR = re.compile(r"(?<!\s)\s+by\s+@[\w-]{1,39}(?:\[bot\])?\s*\Z")
_CLOSE_WORDS = frozenset({"close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved"})


# --------------------------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class _Line:
    text: str
    fence: str  # "" outside a fence, "open" for an opening fence line, "in" inside (closing line included)
    heading: tuple[int, str] | None = None


@dataclass(frozen=True)
class _VersionHeading:
    version: str
    component: str | None
    date: date | None
    compare_url: str | None


def _normalise(markdown: object) -> str:
    if markdown is None:
        return ""
    if isinstance(markdown, bytes | bytearray):
        markdown = bytes(markdown).decode("utf-8", "replace")
    if not isinstance(markdown, str):
        markdown = str(markdown)
    return markdown.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _heading(line: str) -> tuple[int, str] | None:
    """An ATX heading ``(level, text)``, else ``None``. Hand written to stay linear."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return None
    level = len(stripped) - len(stripped.lstrip("#"))
    if not 1 <= level <= 6:
        return None
    rest = stripped[level:]
    if rest and rest[0] not in " \t":
        return None
    text = rest.strip()
    if text.endswith("#"):
        without = text.rstrip("#")
        if not without:
            text = ""
        elif without[-1] in " \t":
            text = without.rstrip()
    return level, text


def _scan(lines: list[str]) -> Iterator[_Line]:
    """Classify lines, tracking fenced code. A fence opened inside a list item (indented) also ends, as in
    CommonMark, at the first non-blank line indented less than its opening line, so one unclosed fence in
    an entry cannot swallow the releases below it. An unclosed top-level fence runs to the end."""
    fence: tuple[str, int, int] | None = None  # (char, length, indent)
    for line in lines:
        if fence is not None:
            char, length, indent = fence
            if indent > 0 and line.strip() and _indent(line) < indent:
                fence = None  # the list item ended: handle the line normally below
            else:
                yield _Line(line, "in")
                stripped = line.strip()
                if stripped.startswith(char * length) and not stripped.lstrip(char).strip():
                    fence = None
                continue
        match = _FENCE_OPEN.match(line)
        if match and not (match.group(1)[0] == "`" and "`" in line[match.end() :]):
            fence = (match.group(1)[0], len(match.group(1)), _indent(line))
            yield _Line(line, "open")
            continue
        yield _Line(line, "", _heading(line))


def _safe_url(url: str | None) -> str | None:
    """Keep absolute http(s) URLs only, so a parsed URL can go straight into an ``href``."""
    if url and _HTTP_URL.fullmatch(url):
        return url
    return None


def _parse_date(text: str) -> date | None:
    match = _ISO_DATE.search(text)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _version_heading(heading: tuple[int, str] | None) -> _VersionHeading | None:
    if heading is None:
        return None
    level, text = heading
    if level > _MAX_VERSION_HEADING_LEVEL or not text or len(text) > _MAX_HEADING_TEXT:
        return None
    url: str | None = None
    linked = _LINKED_LABEL.match(text)
    if linked:
        label, url, rest = linked.group(1), linked.group(2), text[linked.end() :]
    else:
        end = _LABEL_END.search(text)
        label, rest = (text[: end.start()], text[end.start() :]) if end else (text, "")
    label = label.strip()
    word = _VERSION_WORD.match(label)  # "## Version 1.2.0"
    if word:
        label = label[word.end() :]
    split = split_version_label(label)
    if split is None:
        return None
    component, version = split
    return _VersionHeading(version, component, _parse_date(rest), _safe_url(url))


# --------------------------------------------------------------------------------------------- entries


def _skip_ws_back(text: str, end: int) -> int:
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _full_sha(short: str, url: str | None) -> str:
    """The full sha when the link's ``/commit/<sha>`` extends the abbreviated label, else the label."""
    if url:
        match = _COMMIT_URL.search(url)
        if match and match.group(1).lower().startswith(short):
            return match.group(1).lower()
    return short


def _classify(token: re.Match[str]) -> PrRef | CommitRef | None:
    if token.group("label") is not None:
        label, url = token.group("label").strip(), _safe_url(token.group("url"))
        pr = _PR_LABEL.fullmatch(label)
        if pr:
            return PrRef(int(pr.group(1)), url)
        if _SHA_LABEL.fullmatch(label):
            return CommitRef(_full_sha(label.lower(), url), url)
        return None
    if token.group("num") is not None:
        return PrRef(int(token.group("num")[1:]))
    sha = token.group("sha")
    if any(c.isdigit() for c in sha):  # "(defaced)" is hex but not a commit
        return CommitRef(sha)
    return None


def _take_group(text: str, end: int, tokens: dict[int, re.Match[str]]) -> tuple[int, list[PrRef | CommitRef]] | None:
    """A ``([#88](url))`` / ``([1a2b3c4](url), [#89](url))`` group ending at ``end``: ``(start, refs)``."""
    if end == 0 or text[end - 1] != ")":
        return None
    pos = end - 1
    refs: list[PrRef | CommitRef] = []
    while True:
        pos = _skip_ws_back(text, pos)
        token = tokens.get(pos)
        ref = _classify(token) if token else None
        if token is None or ref is None:
            return None
        refs.append(ref)
        pos = token.start()
        before = _skip_ws_back(text, pos)
        if before > 0 and text[before - 1] == ",":
            pos = before - 1
        elif before > 0 and text[before - 1] == "(":
            return before - 1, refs[::-1]
        elif before == pos:  # two tokens glued together: not a reference group
            return None


def _take_closes(text: str, end: int, tokens: dict[int, re.Match[str]]) -> tuple[int, list[PrRef]] | None:
    """A conventional-changelog ``, closes [#12](url) [#13](url)`` ending at ``end``: ``(start, issues)``."""
    pos = end
    refs: list[PrRef] = []
    while True:
        token = tokens.get(_skip_ws_back(text, pos))
        ref = _classify(token) if token else None
        if token is None or not isinstance(ref, PrRef):
            break
        refs.append(ref)
        pos = token.start()
        before = _skip_ws_back(text, pos)
        if before > 0 and text[before - 1] == ",":
            pos = before - 1
    if not refs:
        return None
    word_end = _skip_ws_back(text, pos)
    start = word_end
    while start > 0 and text[start - 1].isalpha():
        start -= 1
    if text[start:word_end].lower() not in _CLOSE_WORDS:
        return None
    start = _skip_ws_back(text, start)
    if start > 0 and text[start - 1] == ",":
        start -= 1
    return start, refs[::-1]


def _strip_refs(text: str) -> tuple[str, list[PrRef], list[CommitRef], list[PrRef]] | None:
    """Remove trailing reference groups; ``None`` if there were none. Works on an end index (no copies), so
    thousands of groups stay linear."""
    tokens = {m.end(): m for m in _REF_TOKEN.finditer(text)}
    found: list[tuple[list[PrRef | CommitRef], list[PrRef]]] = []  # (refs, closes) from the end backwards
    end = _skip_ws_back(text, len(text))
    while end > 0:
        group = _take_group(text, end, tokens)
        if group is not None:
            start, refs = group
            found.append((refs, []))
        elif (closing := _take_closes(text, end, tokens)) is not None:
            start, issues = closing
            found.append(([], list(issues)))
        elif (pull := _PULL_IN.search(text, 0, end)) is not None:
            start = pull.start()
            found.append(([PrRef(int(pull.group(2)), _safe_url(pull.group(1)))], []))
            author = _BY_AUTHOR.search(text, 0, start)
            if author is not None:
                start = author.start()
        else:
            break
        end = _skip_ws_back(text, start)
    if not found:
        return None
    found.reverse()
    prs = [r for refs, _ in found for r in refs if isinstance(r, PrRef)]
    commits = [r for refs, _ in found for r in refs if isinstance(r, CommitRef)]
    closes = [c for _, issues in found for c in issues]
    return text[:end], prs, commits, closes


def _build_entry(lines: list[str], section: str) -> Entry:
    while len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    match = _BULLET.match(lines[0])
    first = ((match.group(3) if match else lines[0]) or "").strip()
    # keep a leading blank line: it separates the bullet's paragraph from the body below
    continuation = textwrap.dedent("\n".join(lines[1:])).rstrip() if len(lines) > 1 else ""

    scope: str | None = None
    marked_breaking = False
    scoped = _SCOPE.match(first)
    if scoped:
        scope = scoped.group(1).strip() or None
        first = first[scoped.end() :]
        if scope and _BREAKING_WORD.fullmatch(scope):  # "* **BREAKING CHANGE:** ..." is a marker, not a scope
            scope, marked_breaking = None, True

    whole = f"{first}\n{continuation}" if continuation else first
    prs: list[PrRef] = []
    commits: list[CommitRef] = []
    closes: list[PrRef] = []
    stripped = _strip_refs(whole)
    if stripped is None and continuation:  # refs at the end of the first line, body below
        first_only = _strip_refs(first)
        if first_only is not None:
            first, prs, commits, closes = first_only
            whole = f"{first}\n{continuation}"
    elif stripped is not None:
        whole, prs, commits, closes = stripped

    breaking = section == BREAKING_CHANGES or marked_breaking or bool(_BREAKING_WORD.search(whole))
    return Entry(
        description=whole.strip(),
        text="\n".join(line.rstrip() for line in lines),
        scope=scope,
        breaking=breaking,
        prs=prs,
        commits=commits,
        closes=closes,
    )


def _mark_breaking(sections: list[Section]) -> list[Section]:
    """An entry elsewhere that shares a commit (abbreviated or full sha) or PR with a BREAKING CHANGES entry is
    breaking too: Release Please lists a ``feat!:`` commit both under Features and under BREAKING CHANGES."""
    breaking = [e for s in sections if s.kind == BREAKING_CHANGES for e in s.entries]
    shas = [c.sha for e in breaking for c in e.commits]
    prs = {p.number for e in breaking for p in e.prs}
    if not shas and not prs:
        return sections

    def same_commit(a: str, b: str) -> bool:  # "1a2b3c4" and "1a2b3c4d5e..." are the same commit
        return a.startswith(b) or b.startswith(a)

    def is_breaking(entry: Entry) -> bool:
        if entry.breaking or any(p.number in prs for p in entry.prs):
            return True
        return any(same_commit(c.sha, sha) for c in entry.commits for sha in shas)

    return [
        dataclasses.replace(s, entries=[dataclasses.replace(e, breaking=is_breaking(e)) for e in s.entries])
        for s in sections
    ]


# --------------------------------------------------------------------------------------------- releases


class _SectionBuilder:
    def __init__(self, title: str) -> None:
        self.title = title
        self.kind = section_kind(title) if title else OTHER
        self.entries: list[Entry] = []
        self.notes: list[str] = []

    def build(self) -> Section:
        notes = "\n".join(line.rstrip() for line in self.notes).strip("\n")
        return Section(self.title, self.kind, self.entries, notes)


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip(" "))


def _parse_sections(body: list[_Line]) -> list[Section]:
    sections: list[_SectionBuilder] = []
    entry: list[str] | None = None
    fence_in_entry = False
    prev_blank = False

    def current() -> _SectionBuilder:
        if not sections:
            sections.append(_SectionBuilder(""))
        return sections[-1]

    def flush() -> None:
        nonlocal entry
        if entry is not None:
            section = current()
            section.entries.append(_build_entry(entry, section.kind))
            entry = None

    for line in body:
        text = line.text
        blank = not text.strip()
        if line.fence == "in":
            (entry if fence_in_entry and entry is not None else current().notes).append(text)
        elif line.fence == "open":
            fence_in_entry = entry is not None and (_indent(text) >= 2 or not prev_blank)
            if not fence_in_entry:
                flush()
            (entry if entry is not None else current().notes).append(text)
        elif line.heading is not None:
            flush()
            level, title = line.heading
            if level > 1:
                sections.append(_SectionBuilder(title))
        elif blank:
            if entry is not None:
                entry.append(text)
            elif sections and sections[-1].notes:
                sections[-1].notes.append(text)
        elif _HR.fullmatch(text):
            flush()
        elif (bullet := _BULLET.match(text)) is not None and len(bullet.group(1)) < 2:
            flush()
            entry = [text]
        elif entry is not None and (_indent(text) >= 2 or not prev_blank):
            entry.append(text)
        else:
            flush()
            current().notes.append(text)
        prev_blank = blank
    flush()
    return _mark_breaking([s.build() for s in sections])


def _release(heading: _VersionHeading | None, lines: list[_Line]) -> ReleaseNotes:
    body = lines[1:] if heading is not None else lines
    markdown = "\n".join(line.text for line in lines).strip("\n")
    return ReleaseNotes(
        version=heading.version if heading else None,
        date=heading.date if heading else None,
        compare_url=heading.compare_url if heading else None,
        sections=_parse_sections(body),
        markdown=markdown,
        component=heading.component if heading else None,
    )


def _chunks(markdown: object) -> tuple[list[_Line], list[tuple[_VersionHeading, list[_Line]]]]:
    """``(preamble, [(heading, lines starting with the heading line), ...])``."""
    preamble: list[_Line] = []
    chunks: list[tuple[_VersionHeading, list[_Line]]] = []
    for line in _scan(_normalise(markdown).split("\n")):
        heading = _version_heading(line.heading)
        if heading is not None:
            chunks.append((heading, [line]))
        elif chunks:
            chunks[-1][1].append(line)
        else:
            preamble.append(line)
    return preamble, chunks


def parse_release_notes(markdown: str) -> ReleaseNotes:
    """Parse one release's notes, as Release Please writes them in CHANGELOG.md and GitHub release bodies.

    Text before the first release heading (``# Changelog``) is skipped, and only the first release is
    parsed (use ``split_changelog`` for a whole file). Without any release heading (e.g. a hand-edited
    release body) the whole text is parsed into sections and ``version``/``date``/``compare_url`` are ``None``.
    Never raises.
    """
    preamble, chunks = _chunks(markdown)
    if chunks:
        return _release(*chunks[0])
    return _release(None, preamble)


def split_changelog(markdown: str) -> list[ReleaseNotes]:
    """Split a whole CHANGELOG.md into releases, in file order (newest first for Release Please). Each has its
    own raw ``markdown``. The preamble (``# Changelog``, ``## [Unreleased]``...) is dropped; a text with no
    release heading gives ``[]``. Never raises."""
    _, chunks = _chunks(markdown)
    return [_release(heading, lines) for heading, lines in chunks]
