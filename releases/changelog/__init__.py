"""Release Please changelogs, plain Python (no Django): parse release notes and CHANGELOG.md, read the
manifest, render sanitized HTML, and collect the changes between two versions."""

from __future__ import annotations

from .commits import pr_number_from_subject
from .manifest import ManifestError, read_manifest
from .merge import MergedSection, VersionedEntry, merge_between, releases_between
from .models import CommitRef, Entry, PrRef, ReleaseNotes, Section
from .parser import parse_release_notes, split_changelog
from .render import render_html, sanitize_html
from .sections import KNOWN_KINDS, section_kind, slugify
from .stored import merge_stored, stored_forms, stored_notes
from .versions import is_semver, parse_version, split_version_label

__all__ = [
    "KNOWN_KINDS",
    "CommitRef",
    "Entry",
    "ManifestError",
    "MergedSection",
    "PrRef",
    "ReleaseNotes",
    "Section",
    "VersionedEntry",
    "is_semver",
    "merge_between",
    "merge_stored",
    "parse_release_notes",
    "parse_version",
    "pr_number_from_subject",
    "read_manifest",
    "releases_between",
    "render_html",
    "sanitize_html",
    "section_kind",
    "slugify",
    "split_changelog",
    "split_version_label",
    "stored_forms",
    "stored_notes",
]
