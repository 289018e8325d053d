"""Manifest and tag operations of :class:`~releases.oci.client.RegistryClient`: put, head, get,
delete, the immutable put that refuses to move a tag, and tag listing with ``Link`` pagination."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from releases.oci.auth import repository_scope as _scope
from releases.oci.digest import sha256_digest, verify_digest
from releases.oci.errors import (
    DigestMismatch,
    ManifestInvalid,
    ManifestNotFound,
    RegistryError,
    TagConflict,
)
from releases.oci.manifest import ManifestRef
from releases.oci.names import (
    is_digest,
    validate_digest,
    validate_reference,
    validate_repository,
    validate_tag,
)
from releases.oci.session import (
    RegistrySession,
    parse_error_body,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PutResult:
    """Outcome of :meth:`RegistryClient.put_manifest_immutable`."""

    digest: str
    created: bool


class ManifestOperations(RegistrySession):
    """Manifests and tags."""

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; return its digest.

        Refuses (``ValueError``) a digest reference that is not the body's digest and a body
        whose ``mediaType`` field contradicts ``media_type``. Raises :class:`ManifestInvalid` when
        the registry rejects it (e.g. ``MANIFEST_BLOB_UNKNOWN``: push the blobs first) and
        :class:`DigestMismatch` when the registry stored it under another digest.
        """
        return self._put_manifest(repository, reference, body, media_type, self._push_scopes(repository))

    def head_manifest(self, repository: str, reference: str) -> ManifestRef | None:
        """Digest, media type and size of a manifest, or ``None`` when the tag/digest is absent."""
        validate_repository(repository)
        validate_reference(reference)
        return self._head_manifest(repository, reference, (_scope(repository, "pull"),))

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """``(body, media_type, digest)`` of a manifest.

        Raises :class:`ManifestNotFound` when it is absent and :class:`DigestMismatch` when the
        body does not hash to the digest asked for (or announced by the registry).
        """
        validate_repository(repository)
        validate_reference(reference)
        response = self._send(
            "GET",
            self._manifest_url(repository, reference),
            scopes=(_scope(repository, "pull"),),
            headers={"Accept": ", ".join(self.manifest_accept)},
            what=f"get manifest {repository}:{reference}",
        )
        if response.status_code == 404:
            raise ManifestNotFound(
                f"manifest {repository}:{reference} not found on {self.host}",
                registry=self.host,
                status_code=404,
                errors=parse_error_body(response),
            )
        if response.status_code != 200:
            self._fail(response, f"get manifest {repository}:{reference}", RegistryError)
        body = response.content
        digest = sha256_digest(body)
        announced = response.headers.get("Docker-Content-Digest")
        expected = reference if is_digest(reference) else announced
        if expected and not verify_digest(body, expected):
            raise DigestMismatch(
                f"manifest {repository}:{reference} from {self.host} does not match {expected}",
                registry=self.host,
            )
        if expected:
            digest = expected
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return body, media_type, digest

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest by digest (its tags go with it); False when it was already absent.

        Refuses tags (``ValueError``: the registry only deletes by digest). Raises
        :class:`RegistryError` when deletes are disabled on the registry (HTTP 405).
        """
        validate_repository(repository)
        validate_digest(digest)
        response = self._send(
            "DELETE",
            self._manifest_url(repository, digest),
            scopes=(_scope(repository, "pull", "push", "delete"),),
            what=f"delete manifest {repository}@{digest}",
        )
        if response.status_code in (200, 202, 204):
            return True
        if response.status_code == 404:
            return False
        if response.status_code == 405:
            raise RegistryError(
                f"{self.host} does not allow deleting manifests (HTTP 405); enable storage.delete",
                registry=self.host,
                status_code=405,
                errors=parse_error_body(response),
            )
        self._fail(response, f"delete manifest {repository}@{digest}", RegistryError)

    def put_manifest_immutable(self, repository: str, tag: str, body: bytes, media_type: str) -> PutResult:
        """PUT a manifest under ``tag`` unless the tag exists.

        Absent tag -> PUT (``created=True``); tag already at this digest -> nothing
        (``created=False``); tag at another digest -> :class:`TagConflict`, registry untouched.
        Refuses digests as ``tag`` (``ValueError``). The check and the PUT are two requests, so
        two concurrent publishers of different content can still race; serialise publishing
        per tag (e.g. a database lock) when that matters.
        """
        validate_repository(repository)
        validate_tag(tag)
        digest = sha256_digest(body)
        scopes = self._push_scopes(repository)
        existing = self._head_manifest(repository, tag, scopes)
        if existing is not None:
            if existing.digest == digest:
                return PutResult(digest=digest, created=False)
            raise TagConflict(repository, tag, existing.digest, digest, registry=self.host)
        return PutResult(digest=self._put_manifest(repository, tag, body, media_type, scopes), created=True)

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]:
        """All tags of a repository, following ``Link: <...>; rel="next"`` pagination.

        An unknown repository has no tags (``[]``).
        """
        validate_repository(repository)
        url = f"{self.base_url}/v2/{repository}/tags/list"
        if page_size is not None:
            url = str(httpx.URL(url).copy_merge_params({"n": str(page_size)}))
        tags: list[str] = []
        seen_urls: set[str] = set()
        while url and url not in seen_urls:
            seen_urls.add(url)
            scopes = (_scope(repository, "pull"),)
            response = self._send("GET", url, scopes=scopes, what=f"list tags of {repository}")
            if response.status_code == 404:
                return tags
            if response.status_code != 200:
                self._fail(response, f"list tags of {repository}", RegistryError)
            tags.extend(response.json().get("tags") or [])
            next_link = response.links.get("next", {}).get("url")
            url = self._resolve(next_link, "tag list link") if next_link else ""
        return tags

    def _manifest_url(self, repository: str, reference: str) -> str:
        return f"{self.base_url}/v2/{repository}/manifests/{reference}"

    def _head_manifest(self, repository: str, reference: str, scopes: Sequence[str]) -> ManifestRef | None:
        response = self._send(
            "HEAD",
            self._manifest_url(repository, reference),
            scopes=scopes,
            headers={"Accept": ", ".join(self.manifest_accept)},
            what=f"check manifest {repository}:{reference}",
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self._fail(response, f"check manifest {repository}:{reference}", RegistryError)
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            if is_digest(reference):
                digest = reference
            else:  # the spec makes the header optional: fetch the body to compute it
                _, _, digest = self.get_manifest(repository, reference)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        size = int(response.headers.get("Content-Length", 0))
        return ManifestRef(digest=digest, media_type=media_type, size=size)

    def _put_manifest(
        self, repository: str, reference: str, body: bytes, media_type: str, scopes: Sequence[str]
    ) -> str:
        validate_repository(repository)
        validate_reference(reference)
        digest = sha256_digest(body)
        if is_digest(reference) and reference != digest:
            raise ValueError(f"manifest body hashes to {digest}, not to the reference {reference}")
        try:
            declared = json.loads(body).get("mediaType")
        except (ValueError, AttributeError, UnicodeDecodeError) as exc:
            raise ValueError("manifest body must be a JSON object") from exc
        if declared is not None and declared != media_type:
            raise ValueError(f"manifest declares mediaType {declared!r} but is sent as {media_type!r}")
        what = f"put manifest {repository}:{reference}"
        response = self._send(
            "PUT",
            self._manifest_url(repository, reference),
            scopes=scopes,
            headers={"Content-Type": media_type},
            content=body,
            what=what,
        )
        if response.status_code not in (200, 201):
            self._fail(response, what, ManifestInvalid)
        self._check_digest_header(response, digest, f"manifest {repository}:{reference}")
        return digest
