"""A string key that sorts semantic versions correctly in the database.

``ORDER BY version`` sorts "1.10.0" before "1.9.0". The key pads numbers so that string order is
semver order: major, minor, patch; a release sorts after its pre-releases; pre-release identifiers
compare numerically when numeric and before alphanumeric ones (semver 2.0.0, section 11).
Build metadata is ignored, as semver says.
"""

from __future__ import annotations

import semver

WIDTH = 10
MOVING_TAG_KEY = "~"  # sorts after every version: "latest" is the newest by definition


def _identifier(part: str) -> str:
    if part.isdigit():
        return "0" + part.rjust(WIDTH, "0")
    return "1" + part


def semver_sort_key(value: str) -> str:
    """Sortable key of ``value``; an unparsable value sorts first (empty key)."""
    try:
        version = semver.Version.parse(value)
    except (TypeError, ValueError):
        return MOVING_TAG_KEY if value == "latest" else ""
    core = ".".join(str(n).rjust(WIDTH, "0") for n in (version.major, version.minor, version.patch))
    if not version.prerelease:
        return core + ".~"
    return core + "." + ".".join(_identifier(p) for p in version.prerelease.split(".")) + ".!"
