"""``.release-please-manifest.json``: package path -> current version."""

from __future__ import annotations

import json
from typing import Any

from .versions import is_semver

EXAMPLE = '{".": "1.4.0"}'


class ManifestError(ValueError):
    """The manifest is not valid JSON, not an object of path -> version strings, or a version is not semver."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ManifestError(f"release-please manifest lists package {key!r} twice")
        result[key] = value
    return result


def read_manifest(text: str | bytes) -> dict[str, str]:
    """Parse a Release Please manifest: ``{".": "1.4.0"}`` or ``{"frontend": "1.2.0", "backend": "1.4.0"}``.

    Returns path -> version in file order. ``{}`` (a freshly bootstrapped manifest) gives ``{}``. Raises
    ``ManifestError`` (a ``ValueError``) for invalid JSON, a non-object, duplicate or empty package paths,
    and versions that are not strings holding a strict semantic version (no leading ``v``: Release Please
    writes bare versions).
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"release-please manifest is not UTF-8: {exc}") from None
    if not isinstance(text, str):
        raise ManifestError(f"release-please manifest must be text, not {type(text).__name__}")
    try:
        data = json.loads(text.lstrip("\ufeff"), object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"release-please manifest is not valid JSON ({exc}); expected e.g. {EXAMPLE}") from None
    if not isinstance(data, dict):
        raise ManifestError(
            f"release-please manifest must be a JSON object mapping package paths to versions, e.g. {EXAMPLE}; "
            f"got a JSON {type(data).__name__}"
        )
    manifest: dict[str, str] = {}
    for path, version in data.items():
        if not path.strip():
            raise ManifestError('release-please manifest has an empty package path; use "." for the repository root')
        if not isinstance(version, str):
            raise ManifestError(
                f'version of package {path!r} must be a string such as "1.4.0", not {json.dumps(version)}'
            )
        if not is_semver(version, allow_v_prefix=False):
            raise ManifestError(
                f"version of package {path!r} is {version!r}, which is not a semantic version; "
                "use MAJOR.MINOR.PATCH such as 1.4.0 (no leading 'v')"
            )
        manifest[path] = version
    return manifest
