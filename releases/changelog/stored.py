"""The form a release's notes are stored in: parsed and rendered once, when they are written, so
reading a changelog (or a range of them) never parses markdown again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .merge import section_order
from .parser import parse_release_notes
from .render import render_html


def stored_notes(markdown: str) -> dict[str, Any]:
    """The JSON stored for one release's notes: its Release Please ``component`` and its
    ``sections`` exactly as ``ReleaseNotes.to_dict()`` gives them."""
    notes = parse_release_notes(markdown).to_dict()
    return {"component": notes["component"], "sections": notes["sections"]}


def stored_forms(markdown: str) -> tuple[dict[str, Any], str]:
    """``(stored_notes(markdown), sanitized HTML)``: everything a reader is served besides the markdown."""
    return stored_notes(markdown), render_html(markdown)


def merge_stored(releases: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """``merge_between(...)``'s sections, as dicts, from stored notes.

    ``releases`` are ``(version, stored_notes)`` already selected and in the order the entries should
    come (the database did both). Same grouping, titles and section order as ``merge_between``.
    """
    merged: dict[str, dict[str, Any]] = {}
    for version, notes in releases:
        component = notes.get("component")
        for section in notes.get("sections", ()):
            if not section["entries"]:
                continue
            target = merged.setdefault(
                section["kind"], {"title": section["title"], "kind": section["kind"], "entries": []}
            )
            target["entries"].extend(
                {"version": version, "component": component, **entry} for entry in section["entries"]
            )
    return [merged[kind] for kind in section_order(list(merged))]
