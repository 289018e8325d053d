"""Exceptions raised by :mod:`releases.oci`.

Every exception derives from :class:`RegistryError`, so callers can catch one type. Messages are
written for the person operating the service: they name the registry and say what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RegistryErrorDetail:
    """One entry of the registry's ``{"errors": [{"code", "message", "detail"}]}`` body."""

    code: str
    message: str
    detail: object = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class RegistryError(Exception):
    """Base class: any failure talking to an OCI registry."""

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        status_code: int | None = None,
        errors: Sequence[RegistryErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.registry = registry
        self.status_code = status_code
        self.errors: tuple[RegistryErrorDetail, ...] = tuple(errors)

    @property
    def codes(self) -> tuple[str, ...]:
        """The registry's error codes (e.g. ``("MANIFEST_BLOB_UNKNOWN",)``)."""
        return tuple(error.code for error in self.errors)

    def __str__(self) -> str:
        return self.message


class RegistryUnavailable(RegistryError):
    """Transient failure (5xx, connection refused/reset, timeout, rate limiting) that outlived
    every retry; try again later.

    ``retry_after`` is the wait in seconds the registry asked for when it was rate limiting
    (HTTP 429/503 with ``Retry-After``), ``None`` otherwise: a scheduler may wait that long.
    """

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        status_code: int | None = None,
        errors: Sequence[RegistryErrorDetail] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, registry=registry, status_code=status_code, errors=errors)
        self.retry_after = retry_after


class RegistryAuthError(RegistryError):
    """The registry or its token server refused the request (401/403) or the credentials."""


class TagConflict(RegistryError):
    """The tag already points to another digest; published versions are immutable."""

    def __init__(
        self, repository: str, tag: str, existing_digest: str, new_digest: str, *, registry: str | None = None
    ) -> None:
        super().__init__(
            f"tag {tag} already points to {existing_digest}; published versions are immutable",
            registry=registry,
        )
        self.repository = repository
        self.tag = tag
        self.existing_digest = existing_digest
        self.new_digest = new_digest


class BlobUploadError(RegistryError):
    """The registry rejected a blob upload (4xx), or the digest it stored is not the one sent."""


class ManifestInvalid(RegistryError):
    """The registry rejected a manifest (4xx such as MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN)."""


class ManifestNotFound(RegistryError):
    """The manifest (tag or digest) does not exist in the repository."""


class DigestMismatch(RegistryError):
    """Content received from (or acknowledged by) the registry does not hash to the expected digest."""
