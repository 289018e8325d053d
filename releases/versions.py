"""Semantic versions, for the whole registry: parsing, precedence, the database sort key.

Plain Python (no Django) on the ``semver`` package, so the models, the validators, the changelog
package and the chart index all read and order versions the same way.

Parsing is strict semver 2.0.0 (``1.4.0``, ``1.5.0-rc.1``); a leading ``v``/``V`` is accepted only
when asked (``allow_v_prefix=True``: Release Please tags such as ``v1.4.0``). No version is longer
than ``MAX_VERSION_LENGTH`` (128) characters: every version we publish becomes an OCI tag, and the
distribution spec caps a tag at 128 characters, so a longer one could never be pushed.

Publishable versions (releases, image tags, chart versions) also refuse build metadata
(``1.0.0+build.1``): ``+`` is not allowed in an OCI tag. Helm works around that by pushing
``1.0.0_build.1`` and mapping ``_`` back to ``+``, but then the tag differs from the version,
every other tool (docker, the audit, ``latest``) would need the same mapping, and ``1.0.0+a`` and
``1.0.0+b`` have equal precedence, so "the newest version" would be ambiguous. Release Please never
writes build metadata, so refusing it costs nothing; a pre-release (``1.0.0-build.1``) says the same.

The database sort key (``version_order``/``tag_order``)
--------------------------------------------------------
A column compared with the database's collation cannot hold punctuation-based keys: ICU and glibc
``en_US`` collations ignore or reorder punctuation, so ``1.0.0`` may sort before ``1.0.0-rc.1``.
The key is therefore a byte string that orders by semver precedence under plain byte comparison,
written as **lowercase hexadecimal**. Its only characters are ``0-9a-f``; every collation we know of
(C, glibc locales, ICU root and ``en-US``) gives these sixteen characters distinct primary weights
in ASCII order and treats a prefix as smaller, so ``ORDER BY`` on the key is byte order, hence
semver order, whatever the collation. (A collation with ICU numeric ordering, ``-u-kn``, would
compare digit runs as numbers and break this; no default collation does that.) A ``"C"``
collation would also work but is PostgreSQL-specific; numeric columns cannot hold semver's
unbounded numbers.

The bytes, for ``MAJOR.MINOR.PATCH[-PRE]`` (build metadata is ignored, as semver says):

* each of major, minor, patch: one byte with its number of digits, then the digits. semver
  forbids leading zeros, so more digits is a larger number, and equal lengths compare digit by digit;
* ``0x01`` if there is a pre-release, ``0x02`` if not: a release sorts after its pre-releases;
* each pre-release identifier: numeric ones ``0x01``, digit count, digits (numerically compared);
  alphanumeric ones ``0x02`` then their ASCII characters (numeric before alphanumeric,
  alphanumeric compared by ASCII). What follows an identifier is the next tag (``0x01``/``0x02``)
  or the end of the key, and both sort before any identifier character (the smallest is ``-``,
  ``0x2D``; a key that ends is a prefix, and a prefix sorts first): so ``alpha`` sorts before
  ``alpha-1`` and ``alpha.1``, and a shorter identifier list before a longer one with the same
  start (semver 2.0.0, section 11).

A version of ``n`` characters has at most ``n + 2 + (number of numeric identifiers)`` key bytes,
so with ``MAX_VERSION_LENGTH`` = 128 the key has at most ``SORT_KEY_MAX_LENGTH`` = 382 hex digits.
The moving tag ``latest`` gets ``ff``: a real key starts with the digit count of the major version
(``01``..``7c``), so ``ff`` sorts after every version.
"""

from __future__ import annotations

import functools

import semver

__all__ = [
    "LATEST_SORT_KEY",
    "MAX_VERSION_LENGTH",
    "MOVING_TAG",
    "SEMVER_PATTERN",
    "SORT_KEY_MAX_LENGTH",
    "BuildMetadataRefused",
    "InvalidVersion",
    "VersionTooLong",
    "column_sort_key",
    "compare_versions",
    "is_prerelease",
    "is_semver",
    "parse_publishable_version",
    "parse_version",
    "version_sort_key",
]

MAX_VERSION_LENGTH = 128  # the longest tag the OCI distribution spec allows
SORT_KEY_MAX_LENGTH = 2 * (MAX_VERSION_LENGTH + 2 + (MAX_VERSION_LENGTH - len("0.0.0")) // 2)
MOVING_TAG = "latest"
LATEST_SORT_KEY = "ff"

# semver.org's suggested regular expression, without anchors or groups, to find versions in text.
# A match is a candidate: confirm it with parse_version (\d also matches non-ASCII digits).
SEMVER_PATTERN = (
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)

_NUMERIC = 0x01
_ALPHANUMERIC = 0x02
_PRERELEASE = 0x01
_RELEASE = 0x02


class InvalidVersion(ValueError):
    """Not a semantic version this registry accepts; the message says why."""


class VersionTooLong(InvalidVersion):
    """Longer than ``MAX_VERSION_LENGTH``: it could never be an OCI tag."""


class BuildMetadataRefused(InvalidVersion):
    """Has build metadata (``+...``), which an OCI tag cannot carry."""


def parse_version(value: str | semver.Version, *, allow_v_prefix: bool = False) -> semver.Version:
    """Parse a semantic version strictly: ``1.4.0``, ``1.5.0-rc.1``, ``1.0.0+build.1``.

    ``v1.4.0`` only with ``allow_v_prefix``. No surrounding spaces, no leading zeros, no
    partial versions. Raises ``InvalidVersion`` (a ``ValueError``), ``VersionTooLong`` for more
    than ``MAX_VERSION_LENGTH`` characters.
    """
    if isinstance(value, semver.Version):
        return value
    if not isinstance(value, str):
        raise InvalidVersion(f"version must be a string, not {type(value).__name__}")
    text = value[1:] if allow_v_prefix and value[:1] in ("v", "V") else value
    if len(text) > MAX_VERSION_LENGTH:
        raise VersionTooLong(
            f"version is {len(text)} characters long; a version has at most {MAX_VERSION_LENGTH} "
            "characters (the longest tag an OCI registry accepts), shorten its pre-release part"
        )
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        raise InvalidVersion(
            f"{value!r} is not a semantic version (expected MAJOR.MINOR.PATCH such as 1.4.0)"
        ) from None


def parse_publishable_version(value: str | semver.Version) -> semver.Version:
    """Parse a version that becomes an image or chart tag: ``parse_version`` without ``v`` and
    without build metadata (``BuildMetadataRefused``, see the module docstring for why)."""
    version = parse_version(value)
    if version.build is not None:
        raise BuildMetadataRefused(
            f"'{version}' has build metadata ('+{version.build}'), which cannot be part of an image "
            "or chart tag ('+' is not allowed in OCI tags); Release Please never writes build metadata, "
            f"use a pre-release such as {_as_prerelease(version)} instead"
        )
    return version


def _as_prerelease(version: semver.Version) -> str:
    """``1.0.0+build.1`` -> ``1.0.0-build.1`` (``1.0.0-rc.1+b`` -> ``1.0.0-rc.1.b``), when that is semver."""
    core = str(version.finalize_version())
    prerelease = f"{version.prerelease}.{version.build}" if version.prerelease else version.build
    suggestion = f"{core}-{prerelease}"
    return suggestion if is_semver(suggestion) else f"{core}-build.1"


def is_semver(value: str, *, allow_v_prefix: bool = False) -> bool:
    try:
        parse_version(value, allow_v_prefix=allow_v_prefix)
    except InvalidVersion:
        return False
    return True


def compare_versions(left: str | semver.Version, right: str | semver.Version) -> int:
    """-1, 0 or 1 by semver precedence (build metadata ignored). Raises ``InvalidVersion``."""
    return parse_version(left).compare(parse_version(right))


def is_prerelease(value: str | semver.Version) -> bool:
    return parse_version(value).prerelease is not None


def _number(digits: str) -> bytes:
    return bytes((len(digits),)) + digits.encode("ascii")


@functools.lru_cache(maxsize=4096)
def _key(version: str) -> str:
    return _key_of(parse_version(version))


def _key_of(parsed: semver.Version) -> str:
    key = bytearray()
    for number in (parsed.major, parsed.minor, parsed.patch):
        key += _number(str(number))
    if parsed.prerelease is None:
        key.append(_RELEASE)
    else:
        key.append(_PRERELEASE)
        for identifier in parsed.prerelease.split("."):
            if identifier.isdigit():
                key.append(_NUMERIC)
                key += _number(identifier)
            else:
                key.append(_ALPHANUMERIC)
                key += identifier.encode("ascii")
    return key.hex()


def version_sort_key(value: str | semver.Version) -> str:
    """The collation-independent key (lowercase hex, at most ``SORT_KEY_MAX_LENGTH`` characters):
    keys compare, as strings or in any database, like the versions' semver precedence.

    Raises ``InvalidVersion``.
    """
    if isinstance(value, semver.Version):  # already parsed: no second parse, no cache to outgrow
        return _key_of(value)
    return _key(value)


def column_sort_key(value: str) -> str:
    """What a ``version_order``/``tag_order`` column stores for ``value``: its sort key;
    ``LATEST_SORT_KEY`` for ``latest`` (newest by definition); ``""`` (first) for anything that is
    not a version. Never raises, never longer than ``SORT_KEY_MAX_LENGTH``."""
    if value == MOVING_TAG:
        return LATEST_SORT_KEY
    try:
        return version_sort_key(value)
    except InvalidVersion:
        return ""
