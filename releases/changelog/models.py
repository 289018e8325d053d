"""Value objects for parsed Release Please release notes. Plain dataclasses, JSON-ready via ``to_dict()``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import semver

from .versions import parse_version


@dataclass(frozen=True)
class PrRef:
    """A pull request (or issue) reference such as ``[#88](https://github.com/o/r/issues/88)``.

    ``url`` is ``None`` for an unlinked ``#88`` and for links that are not http(s).
    """

    number: int
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "url": self.url}


@dataclass(frozen=True)
class CommitRef:
    """A commit reference such as ``[1a2b3c4](https://github.com/o/r/commit/1a2b3c4d...)``.

    ``sha`` is lowercase: the full sha when the link's ``/commit/<sha>`` extends the abbreviated label (as
    Release Please writes it), else the label as written (abbreviated).
    """

    sha: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sha": self.sha, "url": self.url}


@dataclass(frozen=True)
class Entry:
    """One bullet of a section.

    ``description`` is the markdown without the bullet, the ``**scope:**`` prefix and the trailing
    reference groups; continuation lines are dedented and joined with ``\\n``. ``text`` is the original
    markdown of the bullet including its continuation lines. ``closes`` holds the issues of a
    conventional-changelog ``, closes #12`` tail.
    """

    description: str
    text: str
    scope: str | None = None
    breaking: bool = False
    prs: list[PrRef] = field(default_factory=list)
    commits: list[CommitRef] = field(default_factory=list)
    closes: list[PrRef] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "description": self.description,
            "breaking": self.breaking,
            "prs": [p.to_dict() for p in self.prs],
            "commits": [c.to_dict() for c in self.commits],
            "closes": [c.to_dict() for c in self.closes],
            "text": self.text,
        }


@dataclass(frozen=True)
class Section:
    """A ``### Features``-style section. ``kind`` is a stable slug (see ``section_kind``); ``notes`` keeps any
    text of the section that is not a bullet (free paragraphs), so nothing is silently lost."""

    title: str
    kind: str
    entries: list[Entry] = field(default_factory=list)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "kind": self.kind,
            "entries": [e.to_dict() for e in self.entries],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class ReleaseNotes:
    """One release of a changelog.

    ``version`` is the bare semantic version (no ``v``, no component); ``component`` is the Release Please
    component when the heading carries one (``frontend-v1.2.0`` / ``frontend: 1.2.0``). ``version``,
    ``date`` and ``compare_url`` are ``None`` when the heading lacks them or they are malformed.
    ``markdown`` is the raw markdown of this release (heading included), as found in the input.
    """

    version: str | None
    date: date | None
    compare_url: str | None
    sections: list[Section] = field(default_factory=list)
    markdown: str = ""
    component: str | None = None

    @property
    def semver(self) -> semver.Version | None:
        if self.version is None:
            return None
        try:
            return parse_version(self.version)
        except ValueError:
            return None

    @property
    def entries(self) -> Iterator[Entry]:
        for section in self.sections:
            yield from section.entries

    @property
    def has_breaking_changes(self) -> bool:
        return any(entry.breaking for entry in self.entries)

    def section(self, kind: str) -> Section | None:
        """The first section of the given kind (e.g. ``"features"``), or ``None``."""
        return next((s for s in self.sections if s.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "component": self.component,
            "date": self.date.isoformat() if self.date else None,
            "compare_url": self.compare_url,
            "sections": [s.to_dict() for s in self.sections],
            "markdown": self.markdown,
        }
