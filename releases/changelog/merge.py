"""'What changed between 1.0.0 and 1.2.0': entries of a version range, grouped by section kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import semver

from .models import Entry, ReleaseNotes
from .sections import KNOWN_KINDS
from .versions import parse_version


@dataclass(frozen=True)
class VersionedEntry:
    """An entry with the release it came from."""

    version: str
    entry: Entry
    component: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "component": self.component, **self.entry.to_dict()}


@dataclass(frozen=True)
class MergedSection:
    title: str
    kind: str
    entries: list[VersionedEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "kind": self.kind, "entries": [e.to_dict() for e in self.entries]}


def _bound(value: str | semver.Version | None, name: str) -> semver.Version | None:
    if value is None:
        return None
    try:
        return parse_version(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def releases_between(
    releases: Iterable[ReleaseNotes],
    from_version: str | semver.Version | None,
    to_version: str | semver.Version | None,
    *,
    newest_first: bool = True,
) -> list[ReleaseNotes]:
    """The releases with ``from_version < version <= to_version`` by semver precedence, newest first
    (oldest first with ``newest_first=False``).

    ``from_version`` is EXCLUSIVE (the version you are on), ``to_version`` INCLUSIVE (the version you go to);
    ``None`` leaves that end open. Both accept an optional leading ``v``. Releases without a parseable
    version are skipped; releases need not be sorted; equal versions keep their input order. Build metadata
    is ignored for ordering (semver). Raises ``ValueError`` for a malformed bound or ``from > to``
    (``from == to`` is an empty range).
    """
    low, high = _bound(from_version, "from_version"), _bound(to_version, "to_version")
    if low is not None and high is not None and low.compare(high) > 0:
        raise ValueError(f"from_version {low} is newer than to_version {high}")
    selected: list[tuple[semver.Version, ReleaseNotes]] = []
    for release in releases:
        version = release.semver
        if version is None:
            continue
        if low is not None and version.compare(low) <= 0:
            continue
        if high is not None and version.compare(high) > 0:
            continue
        selected.append((version, release))
    selected.sort(key=lambda pair: pair[0], reverse=newest_first)  # stable: equal versions keep input order
    return [release for _, release in selected]


def merge_between(
    releases: Iterable[ReleaseNotes],
    from_version: str | semver.Version | None,
    to_version: str | semver.Version | None,
    *,
    newest_first: bool = True,
) -> list[MergedSection]:
    """Entries of every release with ``from_version < version <= to_version`` (see ``releases_between``),
    grouped per section kind.

    Sections come in Release Please's order (breaking changes, features, bug fixes, performance, reverts,
    documentation, miscellaneous, dependencies), then other kinds in the order first met (newest release
    first). A section's title is the one of the first release that has it. Entries are newest release first
    (oldest first with ``newest_first=False``), then in file order, each with its ``version``; nothing is
    de-duplicated. Sections without entries in the range are left out.
    """
    merged: dict[str, MergedSection] = {}
    for release in releases_between(releases, from_version, to_version, newest_first=newest_first):
        version = release.version or ""  # never empty: releases_between skips unversioned releases
        for section in release.sections:
            if not section.entries:
                continue
            target = merged.setdefault(section.kind, MergedSection(section.title, section.kind))
            target.entries.extend(VersionedEntry(version, e, release.component) for e in section.entries)
    return [merged[kind] for kind in section_order(list(merged))]


def section_order(kinds_first_seen: list[str]) -> list[str]:
    """Section kinds in Release Please's order, then unknown kinds in the order first met."""
    order = {kind: index for index, kind in enumerate(KNOWN_KINDS)}
    return sorted(kinds_first_seen, key=lambda kind: (order.get(kind, len(order)), kinds_first_seen.index(kind)))
