"""Field validators for the spec's rules. Each message says what is wrong and what to do.

Versions are read by ``releases.versions``; these wrap its errors in Django's ``ValidationError``."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import semver
from django.conf import settings
from django.core.exceptions import ValidationError

from .charts.environment import ENV_NAME_PATTERN
from .choices import KNOWN_ARCHITECTURES, MOVING_TAG, REQUIRED_ARCHITECTURE
from .versions import (
    BuildMetadataRefused,
    InvalidVersion,
    VersionTooLong,
    parse_publishable_version,
    parse_version,
)

SHA256_DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
GIT_SHA_PATTERN = r"^([0-9a-f]{40}|[0-9a-f]{64})$"
# OCI distribution repository name component (lowercase, separators . _ __ -).
REPOSITORY_NAME_PATTERN = r"^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$"

_digest_re = re.compile(SHA256_DIGEST_PATTERN)
_git_sha_re = re.compile(GIT_SHA_PATTERN)
_env_name_re = re.compile(ENV_NAME_PATTERN)
_repository_re = re.compile(REPOSITORY_NAME_PATTERN)
_host_re = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")


def parse_semver(value: str) -> semver.Version:
    """Parse a semantic version strictly (no leading ``v``), or raise ``ValidationError``."""
    try:
        return parse_version(value)
    except VersionTooLong as error:
        raise ValidationError(str(error), code="too_long") from None
    except InvalidVersion:
        raise ValidationError(
            f"'{value}' is not a semantic version; use MAJOR.MINOR.PATCH such as 1.4.0 (no leading 'v')",
            code="semver",
        ) from None


def validate_semver(value: str) -> None:
    """A version that will be published as a tag: semver, at most 128 characters, no build metadata."""
    parse_semver(value)
    try:
        parse_publishable_version(value)
    except BuildMetadataRefused as error:
        raise ValidationError(str(error), code="build_metadata") from None


def validate_image_tag(value: str) -> None:
    if value == MOVING_TAG:
        return
    try:
        parse_publishable_version(value)
    except (VersionTooLong, BuildMetadataRefused) as error:
        raise ValidationError(str(error), code="tag") from None
    except InvalidVersion:
        raise ValidationError(
            f"tag '{value}' is neither a semantic version such as 1.4.0 nor '{MOVING_TAG}'",
            code="tag",
        ) from None


def validate_sha256_digest(value: str) -> None:
    if not _digest_re.match(value or ""):
        raise ValidationError(
            f"'{value}' is not a SHA-256 digest; it must be 'sha256:' followed by 64 lowercase hex digits",
            code="digest",
        )


def validate_commit_sha(value: str) -> None:
    if not _git_sha_re.match(value or ""):
        raise ValidationError(
            f"'{value}' is not a full git commit hash; give all 40 (or 64) lowercase hex digits, not an abbreviation",
            code="commit_sha",
        )


def validate_positive_size(value: int | None) -> None:
    if value is not None and value <= 0:
        raise ValidationError(f"size must be a positive number of bytes, not {value}", code="size")


def validate_architectures(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("architectures must be a list of names such as ['amd64', 'arm64']", code="arch")
    unknown = sorted(set(value) - set(KNOWN_ARCHITECTURES))
    if unknown:
        raise ValidationError(
            f"unknown architecture(s) {', '.join(unknown)}; use only {', '.join(KNOWN_ARCHITECTURES)}",
            code="arch",
        )
    if len(set(value)) != len(value):
        raise ValidationError("architectures are listed more than once; list each once", code="arch")
    if REQUIRED_ARCHITECTURE not in value:
        raise ValidationError(f"architectures must include {REQUIRED_ARCHITECTURE}; add it to {value}", code="arch")


def validate_env_name(value: str) -> None:
    if not _env_name_re.match(value or ""):
        raise ValidationError(
            f"'{value}' is not UPPER_SNAKE_CASE; use capitals, digits and single underscores, "
            "starting with a letter (for example API_URL)",
            code="env_name",
        )


def validate_repository_name(value: str) -> None:
    if not _repository_re.match(value or ""):
        raise ValidationError(
            f"'{value}' is not a valid repository name; use lowercase letters, digits and . _ - "
            "(for example threek8s-backend)",
            code="repository",
        )


def validate_registry(value: str) -> None:
    """A registry location is ``host[:port]/path`` inside ``REGISTRY_NAMESPACE``."""
    namespace = settings.REGISTRY_NAMESPACE
    host, _, path = (value or "").partition("/")
    if not _host_re.match(host) or not path or not _repository_re.match(path):
        raise ValidationError(
            f"'{value}' is not a valid registry location; use host[:port]/path such as {namespace}",
            code="registry",
        )
    if value != namespace and not value.startswith(namespace + "/"):
        raise ValidationError(
            f"'{value}' is outside the registry namespace {namespace}; publish under {namespace}/",
            code="namespace",
        )


def validate_artifact_uri(value: str) -> None:
    """An artifact URI is ``<registry>/<repository>@sha256:...`` or ``:<tag>``, inside the namespace."""
    namespace = settings.REGISTRY_NAMESPACE
    location, at, digest = (value or "").partition("@")
    if at:
        validate_sha256_digest(digest)
        repository = location
    else:
        repository, colon, tag = location.rpartition(":")
        if not colon or "/" in tag:
            raise ValidationError(
                f"'{value}' is not an artifact URI; use {namespace}/<name>@sha256:<digest>", code="uri"
            )
        validate_image_tag(tag)
    if not repository.startswith(namespace + "/"):
        raise ValidationError(
            f"'{value}' is outside the registry namespace {namespace}; publish under {namespace}/",
            code="namespace",
        )
    validate_registry(repository)


def validate_http_url(value: str) -> None:
    parts = urlsplit(value or "")
    if parts.scheme not in {"http", "https", "oci", "file"} or not (parts.netloc or parts.path):
        raise ValidationError(
            f"'{value}' is not a chart repository URL; use https://..., oci://... or file://...",
            code="url",
        )


_constraint_part_re = re.compile(
    r"^(\^|~|>=|<=|>|<|=|!=)?\s*v?(\d+|x|X|\*)(\.(\d+|x|X|\*))?(\.(\d+|x|X|\*))?(-[0-9A-Za-z.-]+)?$"
)


def validate_version_constraint(value: str) -> None:
    """A Helm dependency version: a version or a constraint such as ``^1.2.0``, ``~15.x`` or ``>=1 <2``."""
    alternatives = [alt.strip() for alt in (value or "").split("||")]
    for alternative in alternatives:
        parts = [part for part in re.split(r"[\s,]+", alternative) if part]
        if not parts or not all(_constraint_part_re.match(part) for part in parts):
            raise ValidationError(
                f"'{value}' is not a version constraint; use a version like 1.2.3 or a range like ^1.2.0",
                code="constraint",
            )


def _size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size:,} bytes"


def validate_changelog_size(value: str) -> None:
    """Refuse release notes over ``CHANGELOG_MAX_BYTES`` (UTF-8): they are parsed and rendered when
    written, and served to anonymous readers."""
    limit = settings.CHANGELOG_MAX_BYTES
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ValidationError(
            f"the notes are {size:,} bytes; at most {_size_label(limit)} (CHANGELOG_MAX_BYTES) are accepted; "
            "shorten them or link to the full changelog",
            code="changelog_size",
        )
