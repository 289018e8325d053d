"""Section titles -> stable kinds (slugs)."""

from __future__ import annotations

import re
import unicodedata

BREAKING_CHANGES = "breaking-changes"
FEATURES = "features"
BUG_FIXES = "bug-fixes"
PERFORMANCE_IMPROVEMENTS = "performance-improvements"
REVERTS = "reverts"
DOCUMENTATION = "documentation"
MISCELLANEOUS = "miscellaneous"
DEPENDENCIES = "dependencies"
OTHER = "other"  # entries/text before any section heading, or a title with no letters or digits

# Release Please's default changelog sections, in the order it writes them. Other kinds sort after these.
KNOWN_KINDS: tuple[str, ...] = (
    BREAKING_CHANGES,
    FEATURES,
    BUG_FIXES,
    PERFORMANCE_IMPROVEMENTS,
    REVERTS,
    DOCUMENTATION,
    MISCELLANEOUS,
    DEPENDENCIES,
)

_ALIASES: dict[str, str] = {
    "breaking-changes": BREAKING_CHANGES,
    "breaking-change": BREAKING_CHANGES,
    "breaking": BREAKING_CHANGES,
    "features": FEATURES,
    "feature": FEATURES,
    "new-features": FEATURES,
    "bug-fixes": BUG_FIXES,
    "bug-fix": BUG_FIXES,
    "bugfixes": BUG_FIXES,
    "bugfix": BUG_FIXES,
    "fixes": BUG_FIXES,
    "performance-improvements": PERFORMANCE_IMPROVEMENTS,
    "performance": PERFORMANCE_IMPROVEMENTS,
    "reverts": REVERTS,
    "revert": REVERTS,
    "documentation": DOCUMENTATION,
    "docs": DOCUMENTATION,
    "miscellaneous-chores": MISCELLANEOUS,
    "miscellaneous": MISCELLANEOUS,
    "chores": MISCELLANEOUS,
    "chore": MISCELLANEOUS,
    "dependencies": DEPENDENCIES,
    "dependency-updates": DEPENDENCIES,
    "deps": DEPENDENCIES,
}

_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """ASCII slug, e.g. ``"⚠ BREAKING CHANGES"`` -> ``"breaking-changes"``."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return _NON_SLUG.sub("-", ascii_title.lower()).strip("-")


def section_kind(title: str) -> str:
    """The kind of a section title: one of ``KNOWN_KINDS`` for Release Please's titles (and common synonyms such
    as "Miscellaneous Chores" -> "miscellaneous"), else the slug of the title, else ``"other"``."""
    slug = slugify(title)
    return _ALIASES.get(slug, slug or OTHER)
