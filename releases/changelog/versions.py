"""Semantic versions as Release Please writes them: in headings, tags and the manifest."""

from __future__ import annotations

import re

import semver

# https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string
SEMVER_PATTERN = (
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
_BARE_RE = re.compile(rf"v?(?P<version>{SEMVER_PATTERN})")
# "<component><sep>[v]<version>": Release Please tags use "-" (tag-separator may be "/"), npm-style names "@",
# combined notes "component: 1.2.0". The component has no spaces (so "Upgrading to 2.0.0" is no version) and
# is matched lazily, so "my-app-v1.0.0" gives component "my-app".
_COMPONENT_RE = re.compile(rf"(?P<component>[\w@./-]+?)(?:-|/|@|:\s*)v?(?P<version>{SEMVER_PATTERN})")
_MAX_LABEL = 200


def parse_version(value: str | semver.Version, *, allow_v_prefix: bool = True) -> semver.Version:
    """Parse a semantic version (``1.4.0``, ``1.5.0-rc.1``; ``v1.4.0`` unless ``allow_v_prefix`` is false).

    Raises ``ValueError`` with a readable message.
    """
    if isinstance(value, semver.Version):
        return value
    if not isinstance(value, str):
        raise ValueError(f"version must be a string, not {type(value).__name__}")
    text = value.strip()
    if allow_v_prefix and text[:1] in ("v", "V"):
        text = text[1:]
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        raise ValueError(f"{value!r} is not a semantic version (expected MAJOR.MINOR.PATCH such as 1.4.0)") from None


def is_semver(value: str, *, allow_v_prefix: bool = False) -> bool:
    try:
        parse_version(value, allow_v_prefix=allow_v_prefix)
    except ValueError:
        return False
    return True


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
