"""Blob operations of :class:`~releases.oci.client.RegistryClient`: existence, cross-repository
mounts, and uploads in bounded memory (a streaming monolithic PUT, or POST/PATCH/PUT chunks for
registries that refuse those)."""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import BinaryIO

import httpx

from releases.oci.auth import repository_scope as _scope
from releases.oci.errors import (
    BlobUploadError,
    DigestMismatch,
    RegistryAuthError,
    RegistryError,
)
from releases.oci.names import (
    looks_like_host,
    validate_digest,
    validate_repository,
)
from releases.oci.session import (
    RegistrySession,
    _describe,
    parse_error_body,
)

logger = logging.getLogger(__name__)

#: Answers to a monolithic blob PUT that mean "not like this": send the blob in chunks instead.
#: The distribution spec names no status for it, so these are the ones seen in practice: 413 from
#: a registry, or a proxy in front of it, that caps request bodies (nginx ``client_max_body_size``,
#: Cloudflare's 100 MB), 405/501 from registries that only implement PATCH uploads.
MONOLITHIC_REFUSALS = frozenset({405, 413, 501})


class _ChunkedUploadHosts:
    """Registries (``scheme://host``) that refused a monolithic upload in this process: later
    clients for them go straight to chunked uploads instead of sending each blob twice."""

    def __init__(self) -> None:
        self._hosts: set[str] = set()
        self._lock = threading.Lock()

    def add(self, base_url: str) -> None:
        with self._lock:
            self._hosts.add(base_url.lower())

    def discard(self, base_url: str) -> None:
        with self._lock:
            self._hosts.discard(base_url.lower())

    def __contains__(self, base_url: object) -> bool:
        return isinstance(base_url, str) and base_url.lower() in self._hosts


CHUNKED_UPLOAD_HOSTS = _ChunkedUploadHosts()

#: What :meth:`RegistryClient.push_blob` accepts: a path, a binary file object or bytes.
BlobSource = str | os.PathLike[str] | BinaryIO | bytes


class _BlobReader:
    """Byte ranges of one blob source, streamed in ``piece_size`` pieces.

    A range that does not start where the previous reads stopped (a re-sent request, a restarted
    upload) seeks back first; a source that cannot seek then raises :class:`BlobUploadError`.
    """

    def __init__(self, handle: BinaryIO, size: int, digest: str, piece_size: int, host: str) -> None:
        self.size = size
        self._handle = handle
        self._digest = digest
        self._piece_size = piece_size
        self._host = host
        self._start = handle.tell() if handle.seekable() else None
        self._position = 0  # offset (from the start of the blob) of the next byte read

    @property
    def rewindable(self) -> bool:
        return self._start is not None

    def read(self, offset: int, length: int) -> Iterator[bytes]:
        """``length`` bytes from ``offset``; checked now, read as the request body is sent."""
        if offset != self._position:
            if self._start is None:
                raise BlobUploadError(
                    f"cannot re-send blob {self._digest} to {self._host}: the source is not seekable",
                    registry=self._host,
                )
            self._handle.seek(self._start + offset)
            self._position = offset
        return self._pieces(length)

    def _pieces(self, length: int) -> Iterator[bytes]:
        remaining = length
        while remaining > 0:
            piece = self._handle.read(min(self._piece_size, remaining))
            if not piece:
                raise BlobUploadError(
                    f"source of blob {self._digest} ended after {self._position} of {self.size} bytes",
                    registry=self._host,
                )
            self._position += len(piece)
            remaining -= len(piece)
            yield piece


class BlobTransfer(RegistrySession):
    """Blob existence and uploads."""

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True when the repository has the blob (``HEAD /v2/<repo>/blobs/<digest>``).

        Refuses invalid names/digests (``ValueError``).
        """
        validate_repository(repository)
        validate_digest(digest)
        return self._blob_exists(repository, digest, (_scope(repository, "pull"),))

    def push_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        source: BlobSource,
        mount_from: Iterable[str] = (),
    ) -> int:
        """Make the blob present in ``repository``; return the number of bytes uploaded.

        Order: existing blob -> 0; cross-repository mount from one of ``mount_from`` (repository
        names in this registry; ``host/...`` names of other registries are ignored) -> 0;
        otherwise an upload -> ``size``: monolithic (POST, then one PUT with Content-Length) or,
        when the registry refuses that or ``chunked_upload`` is set, chunked (POST, PATCHes with
        Content-Range, PUT with the digest). Either way the source is read in ``chunk_size``
        pieces so memory stays bounded whatever the blob size.
        Refuses a source whose size differs from ``size`` (:class:`BlobUploadError`); raises
        :class:`DigestMismatch` when the registry reports a different digest and
        :class:`BlobUploadError` when it rejects the upload (e.g. ``DIGEST_INVALID``).
        A non-seekable file object cannot be re-sent, so it is not retried (nor re-sent in chunks
        after a refused monolithic upload).
        """
        validate_repository(repository)
        validate_digest(digest)
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        sources = self._mount_sources(repository, mount_from)
        push_scopes = (_scope(repository, "pull", "push"),)
        if self._blob_exists(repository, digest, push_scopes):
            logger.debug("blob %s already in %s/%s", digest, self.host, repository)
            return 0
        with ExitStack() as stack:
            reader = _BlobReader(self._open_source(source, size, stack), size, digest, self.chunk_size, self.host)
            return self._retrying(
                lambda: self._upload_once(repository, digest, reader, sources),
                f"push blob {digest} to {repository}",
            )

    @property
    def uses_chunked_upload(self) -> bool:
        """True when blobs go up in chunks: forced (``chunked_upload``), or because this registry
        refused a monolithic upload earlier in this process."""
        return self.chunked_upload or self.base_url in CHUNKED_UPLOAD_HOSTS

    def _push_scopes(self, repository: str) -> tuple[str, ...]:
        validate_repository(repository)
        return (_scope(repository, "pull", "push"),)

    def _mount_sources(self, repository: str, mount_from: Iterable[str]) -> list[str]:
        sources: list[str] = []
        for name in mount_from:
            first, _, rest = name.partition("/")
            if rest and looks_like_host(first):
                if first.lower() != self.host.lower():
                    continue  # another registry: cannot mount from there
                name = rest
            validate_repository(name)
            if name != repository and name not in sources:
                sources.append(name)
        return sources

    def _blob_exists(self, repository: str, digest: str, scopes: Sequence[str]) -> bool:
        response = self._send(
            "HEAD",
            f"{self.base_url}/v2/{repository}/blobs/{digest}",
            scopes=scopes,
            what=f"check blob {digest} in {repository}",
        )
        if response.status_code in (200, 302, 303, 307, 308):  # a redirect points at existing content
            return True
        if response.status_code == 404:
            return False
        self._fail(response, f"check blob {digest} in {repository}", RegistryError)

    def _open_source(self, source: BlobSource, size: int, stack: ExitStack) -> BinaryIO:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            if len(data) != size:
                raise BlobUploadError(f"blob is {len(data)} bytes, expected {size}", registry=self.host)
            return io.BytesIO(data)
        if isinstance(source, str | os.PathLike):
            handle: BinaryIO = stack.enter_context(open(source, "rb"))  # noqa: SIM115 (closed by the stack)
            actual = os.fstat(handle.fileno()).st_size
            if actual != size:
                message = f"{os.fspath(source)} is {actual} bytes, expected {size}"
                raise BlobUploadError(message, registry=self.host)
            return handle
        return source

    def _upload_once(self, repository: str, digest: str, reader: _BlobReader, mount_from: Sequence[str]) -> int:
        uploads_url = f"{self.base_url}/v2/{repository}/blobs/uploads/"
        push_scopes = (_scope(repository, "pull", "push"),)
        session: httpx.Response | None = None  # the 202 that opened the upload session
        for position, source_repository in enumerate(mount_from):
            mount_scopes = (*push_scopes, _scope(source_repository, "pull"))
            try:
                response = self._check_transient(
                    self._send_once(
                        "POST",
                        uploads_url,
                        scopes=mount_scopes,
                        params={"mount": digest, "from": source_repository},
                        headers={"Content-Length": "0"},
                        what=f"mount blob {digest} into {repository}",
                    )
                )
            except RegistryAuthError as exc:
                message = "mount of %s from %s refused (%s); uploading instead"
                logger.info(message, digest, source_repository, exc)
                continue
            if response.status_code == 201:
                self._check_digest_header(response, digest, f"mount of blob into {repository}")
                logger.debug("mounted %s into %s from %s", digest, repository, source_repository)
                return 0
            if response.status_code == 202:
                if position < len(mount_from) - 1:
                    unused = self._resolve(response.headers.get("Location", ""), "upload location")
                    self._cancel_upload(unused, push_scopes)
                else:
                    session = response
                continue
            if response.status_code in (401, 403):
                continue
            self._fail(response, f"mount blob {digest} into {repository}", BlobUploadError)
        if session is None:
            session = self._start_upload(repository)
        if self.uses_chunked_upload:
            return self._upload_chunks(repository, digest, reader, session)
        location = self._resolve(session.headers.get("Location", ""), "upload location")
        put_url = str(httpx.URL(location).copy_merge_params({"digest": digest}))
        response = self._send_once(
            "PUT",
            put_url,
            scopes=push_scopes,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(reader.size)},
            body=lambda: reader.read(0, reader.size),
            what=f"upload blob {digest} to {repository}",
        )
        if response.status_code in MONOLITHIC_REFUSALS:
            return self._fall_back_to_chunks(repository, digest, reader, location, response)
        self._check_transient(response)
        if response.status_code != 201:
            self._fail(response, f"upload blob {digest} to {repository}", BlobUploadError)
        self._check_digest_header(response, digest, f"upload of blob to {repository}")
        return reader.size

    def _start_upload(self, repository: str) -> httpx.Response:
        """POST a new upload session; the 202 answer (``Location``, ``OCI-Chunk-Min-Length``)."""
        response = self._check_transient(
            self._send_once(
                "POST",
                f"{self.base_url}/v2/{repository}/blobs/uploads/",
                scopes=(_scope(repository, "pull", "push"),),
                headers={"Content-Length": "0"},
                what=f"start an upload to {repository}",
            )
        )
        if response.status_code != 202:
            self._fail(response, f"start an upload to {repository}", BlobUploadError)
        return response

    def _fall_back_to_chunks(
        self, repository: str, digest: str, reader: _BlobReader, location: str, refusal: httpx.Response
    ) -> int:
        status = refusal.status_code
        detail = _describe(refusal, parse_error_body(refusal))
        CHUNKED_UPLOAD_HOSTS.add(self.base_url)
        self._cancel_upload(location, (_scope(repository, "pull", "push"),))
        if not reader.rewindable:
            raise BlobUploadError(
                f"{self.host} refused the monolithic upload of blob {digest} (HTTP {status}: {detail}) and its "
                f"source is not seekable, so it cannot be re-sent in chunks; push it again (uploads to "
                f"{self.host} now go in chunks) or pass chunked_upload=True",
                registry=self.host,
                status_code=status,
            )
        message = "%s refused a monolithic upload (HTTP %d: %s); uploading in chunks to it from now on"
        logger.warning(message, self.host, status, detail)
        return self._upload_chunks(repository, digest, reader, self._start_upload(repository))

    def _upload_chunks(self, repository: str, digest: str, reader: _BlobReader, session: httpx.Response) -> int:
        """PATCH the blob in ``upload_chunk_size`` pieces (Content-Range), then PUT ``?digest=``."""
        push_scopes = (_scope(repository, "pull", "push"),)
        location = self._resolve(session.headers.get("Location", ""), "upload location")
        minimum = session.headers.get("OCI-Chunk-Min-Length", "")
        chunk = max(self.upload_chunk_size, int(minimum) if minimum.isdigit() else 0)
        offset = 0
        while offset < reader.size:
            length = min(chunk, reader.size - offset)
            last = offset + length - 1
            what = f"upload bytes {offset}-{last} of blob {digest} to {repository}"
            response = self._check_transient(
                self._send_once(
                    "PATCH",
                    location,
                    scopes=push_scopes,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{last}",
                        "Content-Length": str(length),
                    },
                    body=lambda start=offset, count=length: reader.read(start, count),
                    what=what,
                )
            )
            if response.status_code != 202:
                self._fail(response, what, BlobUploadError)
            location = self._resolve(response.headers.get("Location") or location, "upload location")
            offset = last + 1
        put_url = str(httpx.URL(location).copy_merge_params({"digest": digest}))
        what = f"finish the upload of blob {digest} to {repository}"
        response = self._check_transient(
            self._send_once("PUT", put_url, scopes=push_scopes, headers={"Content-Length": "0"}, what=what)
        )
        if response.status_code != 201:
            self._fail(response, what, BlobUploadError)
        self._check_digest_header(response, digest, f"upload of blob to {repository}")
        return reader.size

    def _cancel_upload(self, location: str, scopes: Sequence[str]) -> None:
        try:
            self._send_once("DELETE", location, scopes=scopes)
        except (httpx.TransportError, RegistryError) as exc:  # best effort: sessions expire anyway
            logger.debug("could not cancel upload session %s: %s", location, exc)

    def _check_digest_header(self, response: httpx.Response, expected: str, what: str) -> None:
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != expected:
            raise DigestMismatch(
                f"{self.host} stored {announced} for the {what}, expected {expected}", registry=self.host
            )
