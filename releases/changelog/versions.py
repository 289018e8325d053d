"""Semantic versions as Release Please writes them: in headings, tags and the manifest."""

from __future__ import annotations

import re

import semver

from ..versions import SEMVER_PATTERN, is_semver
from ..versions import parse_version as _parse_strict

__all__ = ["SEMVER_PATTERN", "is_semver", "parse_version", "split_version_label"]

_BARE_RE = re.compile(rf"v?(?P<version>{SEMVER_PATTERN})")
# "<component><sep>[v]<version>": Release Please tags use "-" (tag-separator may be "/"), npm-style names "@",
# combined notes "component: 1.2.0". The component has no spaces (so "Upgrading to 2.0.0" is no version) and
# is matched lazily, so "my-app-v1.0.0" gives component "my-app".
_COMPONENT_RE = re.compile(rf"(?P<component>[\w@./-]+?)(?:-|/|@|:\s*)v?(?P<version>{SEMVER_PATTERN})")
_MAX_LABEL = 200


def parse_version(value: str | semver.Version, *, allow_v_prefix: bool = True) -> semver.Version:
    """Parse a version as written in changelogs and tags: ``releases.versions.parse_version``, but
    surrounding spaces are ignored and a leading ``v`` is accepted unless ``allow_v_prefix`` is false.

    Raises ``ValueError`` (``InvalidVersion``) with a readable message.
    """
    if isinstance(value, str):
        value = value.strip()
    return _parse_strict(value, allow_v_prefix=allow_v_prefix)


def split_version_label(label: str) -> tuple[str | None, str] | None:
    """Split a tag or heading label into ``(component, version)``; ``None`` if it holds no semantic version.

    ``1.4.0`` / ``v1.4.0`` -> ``(None, "1.4.0")``; ``threek8s-v1.4.0`` -> ``("threek8s", "1.4.0")``;
    ``frontend: 1.2.0`` -> ``("frontend", "1.2.0")``; ``1.5.0-rc.1`` -> ``(None, "1.5.0-rc.1")``.
    A bare version wins over a component split (``1.4.0-rc.1`` is never component ``1.4.0``).
    """
    text = label.strip()
    if not text or len(text) > _MAX_LABEL:
        return None
    match = _BARE_RE.fullmatch(text)
    component: str | None = None
    if match is None:
        match = _COMPONENT_RE.fullmatch(text)
        if match is None:
            return None
        component = match.group("component").strip() or None
    version = match.group("version")
    if not is_semver(version):  # the regex is the spec's, but let the library have the last word
        return None
    return component, version
