"""A thin OCI distribution client on httpx.

One :class:`RegistryClient` talks to one registry through one ``httpx.Client`` (connection reuse).
It pushes blobs in bounded memory (a streaming monolithic upload, or a chunked one for registries
that refuse those), mounts blobs across repositories, puts/heads/gets/deletes manifests, lists
tags, and enforces tag immutability. It honours rate limiting (HTTP 429, 503 with
``Retry-After``) for every request. It never reads ``os.environ``: credentials come from the
caller.
"""

from __future__ import annotations

import io
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import BinaryIO, NoReturn, TypeVar

import httpx

from releases.oci.auth import Challenge, Credentials, TokenCache, merge_scopes, parse_www_authenticate
from releases.oci.auth import repository_scope as _scope
from releases.oci.digest import CHUNK_SIZE, sha256_digest, verify_digest
from releases.oci.errors import (
    BlobUploadError,
    DigestMismatch,
    ManifestInvalid,
    ManifestNotFound,
    RegistryAuthError,
    RegistryError,
    RegistryErrorDetail,
    RegistryUnavailable,
    TagConflict,
)
from releases.oci.manifest import ManifestRef
from releases.oci.media_types import DEFAULT_MANIFEST_ACCEPT
from releases.oci.names import (
    is_digest,
    is_loopback,
    looks_like_host,
    validate_digest,
    validate_reference,
    validate_repository,
    validate_tag,
)
from releases.oci.throttle import THROTTLING_STATUSES, Throttle, parse_retry_after

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: What :meth:`RegistryClient.push_blob` accepts: a path, a binary file object or bytes.
BlobSource = str | os.PathLike[str] | BinaryIO | bytes

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
USER_AGENT = "releases-oci/1"
CREDENTIALS_HINT = "check REGISTRY_USERNAME/REGISTRY_PASSWORD"
#: Size of the PATCH requests of a chunked upload (each is streamed in ``chunk_size`` pieces).
UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024
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


@dataclass(frozen=True)
class PutResult:
    """Outcome of :meth:`RegistryClient.put_manifest_immutable`."""

    digest: str
    created: bool


@dataclass(frozen=True)
class ConnectionSettings:
    """How a :class:`RegistryClient` reaches its registry, for callers that open their own
    connections to it (see :meth:`RegistryClient.connection_settings`)."""

    scheme: str  # "http" or "https"
    host: str  # host[:port]
    verify: bool | ssl.SSLContext
    connect_timeout: float | None
    read_timeout: float | None
    user_agent: str
    #: True when the client was given its own httpx transport: then only the client itself can
    #: reach the registry (tests, proxies), so other connections must not be opened.
    custom_transport: bool


class _Transient(Exception):
    """A 5xx answer: retried by :meth:`RegistryClient._retrying`."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


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


def parse_error_body(response: httpx.Response) -> list[RegistryErrorDetail]:
    """The registry's ``{"errors": [...]}`` body, or ``[]`` when there is none or it is not JSON."""
    try:
        document = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict) or not isinstance(document.get("errors"), list):
        return []
    details = []
    for error in document["errors"]:
        if isinstance(error, dict):
            details.append(
                RegistryErrorDetail(
                    code=str(error.get("code", "UNKNOWN")),
                    message=str(error.get("message", "")),
                    detail=error.get("detail"),
                )
            )
    return details


def _describe(response: httpx.Response, errors: Sequence[RegistryErrorDetail]) -> str:
    if errors:
        return "; ".join(str(error) for error in errors)
    text = response.text.strip() if response.content else ""
    return text[:300] or response.reason_phrase or "no details"


class RegistryClient:
    """Client for one OCI registry (``host[:port]``, or a URL with an explicit scheme).

    Refuses (``ValueError``) plain HTTP to anything but loopback hosts (``localhost``,
    127.0.0.0/8, ``::1``) and the hosts listed in ``insecure_hosts``; everything else uses HTTPS.
    Retries 5xx answers and connection errors ``retries`` times with exponential backoff
    (``backoff``, ``2*backoff``, ... capped at ``max_backoff`` seconds); never retries 4xx but 429.

    Rate limiting: a 429, or a 503 with ``Retry-After`` (seconds or an HTTP-date), pauses every
    request of this client (:attr:`throttle`, shared by its threads) for the time asked (a 429
    without ``Retry-After``: the backoff above), then the request is sent again, at most
    ``rate_limit_retries`` times per request. A wait longer than ``max_retry_after`` seconds, or
    one more throttled answer, raises :class:`RegistryUnavailable` (with ``retry_after``) at once.

    Blob uploads are monolithic (one PUT) unless ``chunked_upload`` is true or the registry has
    refused a monolithic upload in this process (:data:`MONOLITHIC_REFUSALS`; the client then
    switches to chunks at once and remembers it per registry): POST, PATCHes of
    ``upload_chunk_size`` bytes (or the registry's ``OCI-Chunk-Min-Length``), PUT. Either way the
    blob is read in ``chunk_size`` pieces, never whole.
    Use it as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        registry: str,
        *,
        username: str | None = None,
        password: str | None = None,
        insecure_hosts: Iterable[str] = (),
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | ssl.SSLContext = True,
        manifest_accept: Sequence[str] = DEFAULT_MANIFEST_ACCEPT,
        chunk_size: int = CHUNK_SIZE,
        upload_chunk_size: int = UPLOAD_CHUNK_SIZE,
        chunked_upload: bool = False,
        max_retry_after: float = 60.0,
        rate_limit_retries: int = 5,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if retries < 0 or backoff < 0 or chunk_size <= 0:
            raise ValueError("retries and backoff must be >= 0 and chunk_size > 0")
        if upload_chunk_size <= 0 or max_retry_after < 0 or rate_limit_retries < 0:
            raise ValueError("upload_chunk_size must be > 0, max_retry_after and rate_limit_retries >= 0")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self._insecure_hosts = frozenset(host.lower() for host in insecure_hosts)
        scheme, host = self._split_registry(registry)
        self.host = host
        self.scheme = scheme
        self.base_url = f"{scheme}://{host}"
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.manifest_accept = tuple(manifest_accept)
        self.chunk_size = chunk_size
        self.upload_chunk_size = upload_chunk_size
        self.chunked_upload = chunked_upload
        self.max_retry_after = max_retry_after
        self.rate_limit_retries = rate_limit_retries
        #: Shared pause after the registry asked to slow down (the audit's probes honour it too).
        self.throttle = Throttle()
        credentials = None
        if username is not None and password is not None:
            credentials = Credentials(username, password)
        self._credentials = credentials
        self._sleep = sleep
        self._tokens = TokenCache()
        self._bearer: Challenge | None = None  # realm/service learned from the first challenge
        self._basic = False  # the registry asked for basic auth
        self._token_locks: dict[tuple[str, ...], threading.Lock] = {}
        self._token_locks_guard = threading.Lock()
        self.user_agent = user_agent
        self._verify = verify
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._custom_transport = transport is not None
        self._http = httpx.Client(
            timeout=timeout,
            verify=verify,
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            transport=transport,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        user = self._credentials.username if self._credentials else None
        return f"RegistryClient({self.base_url!r}, username={user!r})"

    # -- public API: blobs -------------------------------------------------------------------

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

    # -- public API: manifests ---------------------------------------------------------------

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

    # -- public API: tags and health ---------------------------------------------------------

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

    def check(self) -> None:
        """``GET /v2/``: returns when the registry answers and accepts the credentials.

        Raises :class:`RegistryUnavailable` or :class:`RegistryAuthError` otherwise.
        """
        response = self._send("GET", f"{self.base_url}/v2/", scopes=(), what="reach the API (/v2/)")
        if response.status_code != 200:
            self._fail(response, "reach the API (/v2/)", RegistryError)

    # -- public API: hooks for callers that send their own requests (releases.audit) ---------

    def connection_settings(self) -> ConnectionSettings:
        """Scheme, host, TLS verification, timeouts and User-Agent this client uses."""
        return ConnectionSettings(
            scheme=self.scheme,
            host=self.host,
            verify=self._verify,
            connect_timeout=self._timeout.connect,
            read_timeout=self._timeout.read,
            user_agent=self.user_agent,
            custom_transport=self._custom_transport,
        )

    @property
    def token_auth_active(self) -> bool:
        """True once the registry answered with a bearer challenge: requests then need a token
        per scope set (see :meth:`authorization_for`)."""
        return self._bearer is not None

    def authorization_for(self, scopes: Sequence[str], *, fetch: bool = True) -> str | None:
        """The ``Authorization`` value this client would send for ``scopes``; ``None``: send none.

        Uses the cached bearer token for exactly these scopes and, when there is none but an
        earlier challenge named the token server, fetches one (one fetch at a time per scope set,
        so concurrent callers share it); basic credentials once the registry asked for basic
        auth. With ``fetch=False`` it never does I/O and returns ``None`` where it would have
        fetched a token (then :attr:`token_auth_active` is true). Thread-safe. Raises
        :class:`RegistryAuthError` when the token server refuses the credentials and
        :class:`RegistryUnavailable` when it stays unreachable after retries.
        """
        if self._bearer is None:  # no I/O needed: basic credentials or nothing
            return self._credentials.basic_header() if self._basic and self._credentials else None
        token = self._tokens.get(scopes)
        if token is not None:
            return f"Bearer {token}"
        if not fetch:
            return None
        return self._retrying(
            lambda: self._known_authorization(scopes), f"get a token for {', '.join(scopes) or 'the registry'}"
        )

    def authorization_after_challenge(
        self, www_authenticate: str, scopes: Sequence[str], rejected: str | None = None
    ) -> str | None:
        """The ``Authorization`` value to retry with after a 401 carrying ``www_authenticate``.

        ``rejected`` is the value the 401 answered (``None`` when none was sent). When another
        thread already replaced a rejected token for these scopes, that token is returned without
        asking the token server again. Returns ``None`` when the challenge offers nothing this
        client can answer. Raises :class:`RegistryAuthError` when the registry wants credentials
        and none are configured or the token server refuses them, and
        :class:`RegistryUnavailable` when the token server stays unreachable after retries.
        """
        challenges = parse_www_authenticate(www_authenticate)
        return self._retrying(
            lambda: self._reauthorize(challenges, scopes, rejected),
            f"get a token for {', '.join(scopes) or 'the registry'}",
        )

    def _token_lock(self, scopes: Sequence[str]) -> threading.Lock:
        key = merge_scopes(scopes)
        with self._token_locks_guard:
            lock = self._token_locks.get(key)
            if lock is None:
                lock = self._token_locks[key] = threading.Lock()
            return lock

    # -- internals: URLs ---------------------------------------------------------------------

    def _split_registry(self, registry: str) -> tuple[str, str]:
        registry = registry.strip().rstrip("/")
        scheme = ""
        if "://" in registry:
            scheme, _, registry = registry.partition("://")
            scheme = scheme.lower()
            if scheme not in ("http", "https"):
                raise ValueError(f"unsupported scheme {scheme!r} for registry {registry!r}")
        if not registry or "/" in registry or "?" in registry or "@" in registry:
            raise ValueError(f"registry must be host[:port], got {registry!r}")
        plaintext_ok = self._plaintext_allowed(registry)
        if scheme == "http" and not plaintext_ok:
            rule = "only loopback hosts and insecure_hosts may use http"
            raise ValueError(f"refusing plain HTTP to {registry}: {rule}")
        return scheme or ("http" if plaintext_ok else "https"), registry

    def _plaintext_allowed(self, host: str) -> bool:
        return is_loopback(host) or host.lower() in self._insecure_hosts

    def _manifest_url(self, repository: str, reference: str) -> str:
        return f"{self.base_url}/v2/{repository}/manifests/{reference}"

    def _resolve(self, location: str, what: str) -> str:
        """Absolute URL for a Location/Link value; refuses plain HTTP to non-loopback hosts."""
        url = httpx.URL(self.base_url).join(location)
        if url.scheme == "http" and not self._plaintext_allowed(url.netloc.decode("ascii")):
            raise RegistryError(f"{self.host} sent a plain-HTTP {what} ({url}); refusing", registry=self.host)
        if url.scheme not in ("http", "https"):
            raise RegistryError(f"{self.host} sent an unusable {what} ({url})", registry=self.host)
        return str(url)

    def _same_origin(self, url: str) -> bool:
        parsed = httpx.URL(url)
        base = httpx.URL(self.base_url)
        return (parsed.scheme, parsed.host, parsed.port) == (base.scheme, base.host, base.port)

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

    # -- internals: requests, auth, retries --------------------------------------------------

    def _retrying(self, operation: Callable[[], T], what: str) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation()
            except (httpx.TransportError, _Transient) as exc:
                reason = exc.description if isinstance(exc, _Transient) else f"{type(exc).__name__}: {exc}"
                if attempt > self.retries:
                    raise RegistryUnavailable(
                        f"registry {self.host} is unavailable ({reason}) while trying to {what}; "
                        f"gave up after {attempt} attempt{'s' if attempt > 1 else ''}. Check that the "
                        f"registry at {self.base_url} is running and reachable from here, then retry.",
                        registry=self.host,
                    ) from exc
                delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                total = self.retries + 1
                message = "%s: %s (attempt %d/%d), retrying in %.2fs"
                logger.warning(message, self.host, reason, attempt, total, delay)
                self._sleep(delay)

    def _check_transient(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 500:
            errors = parse_error_body(response)
            raise _Transient(f"HTTP {response.status_code}: {_describe(response, errors)}")
        return response

    def _send(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        what: str,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request with auth handling, retried on 5xx/connection errors. Raises on 401/403."""
        response = self._retrying(
            lambda: self._check_transient(
                self._send_once(
                    method,
                    url,
                    scopes=scopes,
                    headers=headers,
                    params=params,
                    body=(lambda: content) if content is not None else None,
                    what=what,
                )
            ),
            what,
        )
        if response.status_code in (401, 403):
            self._fail(response, what, RegistryAuthError)
        return response

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: Callable[[], bytes | Iterator[bytes]] | None = None,
        what: str | None = None,
    ) -> httpx.Response:
        """One request, sent again only when the registry asks to slow down (after the pause it
        asks for, see :meth:`honour_rate_limit`) or answers a 401 challenge (once, with credentials).
        Waits first while the client is paused, whoever was asked to pause it."""
        answers = 0
        while True:
            pause = self.throttle.remaining()
            if pause > 0:
                self._sleep(pause)
            response = self._send_authenticated(method, url, scopes=scopes, headers=headers, params=params, body=body)
            answers += 1
            retry_after = response.headers.get("Retry-After")
            if not self.honour_rate_limit(response.status_code, retry_after, answers, what or f"{method} {url}"):
                return response

    def honour_rate_limit(self, status: int, retry_after: str | None, attempt: int, what: str) -> bool:
        """Whether an answer asks this client to slow down (429, or 503 with ``Retry-After``);
        if so, pause all its requests (:attr:`throttle`) for the time asked, and the caller sends
        the request again once :attr:`throttle` allows. ``attempt`` counts the throttled answers
        this request got so far, this one included.

        Raises :class:`RegistryUnavailable` when the wait asked exceeds ``max_retry_after`` or the
        request was throttled more than ``rate_limit_retries`` times.
        """
        if status not in THROTTLING_STATUSES:
            return False
        wait = parse_retry_after(retry_after)
        if wait is None:
            if status != 429:
                return False  # a plain 503: an ordinary transient failure, retried with backoff
            wait = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
        if wait > self.max_retry_after:
            raise RegistryUnavailable(
                f"registry {self.host} is rate limiting (HTTP {status}) and asks to wait {wait:.0f} s before "
                f"trying to {what} again, more than the {self.max_retry_after:.0f} s this client waits "
                "(max_retry_after); giving up for now, retry later",
                registry=self.host,
                status_code=status,
                retry_after=wait,
            )
        if attempt > self.rate_limit_retries:
            raise RegistryUnavailable(
                f"registry {self.host} is still rate limiting (HTTP {status}, asks to wait {wait:.0f} s) after "
                f"{attempt - 1} wait{'s' if attempt != 2 else ''} while trying to {what}; "
                "giving up for now, retry later",
                registry=self.host,
                status_code=status,
                retry_after=wait,
            )
        message = "%s: HTTP %d while trying to %s, pausing all requests for %.2fs (wait %d/%d)"
        logger.warning(message, self.host, status, what, wait, attempt, self.rate_limit_retries)
        self.throttle.hold(wait)
        return True

    def _send_authenticated(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: Callable[[], bytes | Iterator[bytes]] | None = None,
    ) -> httpx.Response:
        """Send once; on a 401 challenge, authenticate and send exactly once more."""
        request_headers = dict(headers or {})
        same_origin = self._same_origin(url)
        if same_origin:
            authorization = self._known_authorization(scopes)
            if authorization:
                request_headers["Authorization"] = authorization
        response = self._http.request(
            method, url, headers=request_headers, params=params, content=body() if body else None
        )
        if response.status_code != 401 or not same_origin:
            return response
        challenges = parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
        authorization = self._reauthorize(challenges, scopes, request_headers.get("Authorization"))
        if authorization is None or authorization == request_headers.get("Authorization"):
            return response
        request_headers["Authorization"] = authorization
        logger.debug("%s %s: retrying with credentials", method, url)
        content = body() if body else None
        return self._http.request(method, url, headers=request_headers, params=params, content=content)

    def _known_authorization(self, scopes: Sequence[str]) -> str | None:
        bearer = self._bearer
        if bearer is not None:
            token = self._tokens.get(scopes)
            if token is None:
                with self._token_lock(scopes):  # concurrent callers share one fetch per scope set
                    token = self._tokens.get(scopes)
                    if token is None:
                        token = self._fetch_token(bearer, merge_scopes(scopes), scopes)
            return f"Bearer {token}"
        if self._basic and self._credentials:
            return self._credentials.basic_header()
        return None

    def _reauthorize(self, challenges: list[Challenge], scopes: Sequence[str], rejected: str | None) -> str | None:
        """:meth:`_authorize` after a 401, unless another thread already replaced the rejected token."""
        with self._token_lock(scopes):
            if self._bearer is not None:
                token = self._tokens.get(scopes)
                if token is not None and f"Bearer {token}" != rejected:
                    return f"Bearer {token}"
            return self._authorize(challenges, scopes)

    def _authorize(self, challenges: list[Challenge], scopes: Sequence[str]) -> str | None:
        bearer = next((c for c in challenges if c.is_bearer and c.realm), None)
        if bearer is not None:
            self._bearer = bearer
            self._tokens.discard(scopes)
            wanted = merge_scopes([*scopes, *bearer.scopes])
            return f"Bearer {self._fetch_token(bearer, wanted, scopes)}"
        if any(c.is_basic for c in challenges):
            if self._credentials is None:
                self._no_credentials()
            self._basic = True
            return self._credentials.basic_header()  # type: ignore[union-attr]
        return None

    def _fetch_token(self, challenge: Challenge, wanted: Sequence[str], cache_key: Sequence[str]) -> str:
        realm = challenge.realm or ""
        realm_url = httpx.URL(realm)
        if realm_url.scheme not in ("http", "https"):
            raise RegistryAuthError(f"{self.host} sent an unusable token realm {realm!r}", registry=self.host)
        plaintext_ok = self._plaintext_allowed(realm_url.netloc.decode("ascii"))
        if realm_url.scheme == "http" and self._credentials is not None and not plaintext_ok:
            message = f"{self.host} asks for tokens from plain-HTTP realm {realm}"
            raise RegistryAuthError(f"{message}; refusing to send credentials there", registry=self.host)
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", scope) for scope in wanted)
        headers = {"Accept": "application/json"}
        if self._credentials is not None:
            params.append(("account", self._credentials.username))
            headers["Authorization"] = self._credentials.basic_header()
        logger.debug("requesting token from %s for %s", realm, ", ".join(wanted) or "(no scope)")
        response = self._http.get(realm, params=params, headers=headers)
        if response.status_code >= 500 or response.status_code == 429:
            raise _Transient(f"token server {realm} answered HTTP {response.status_code}")
        if response.status_code in (401, 403):
            if self._credentials is None:
                self._no_credentials()
            raise RegistryAuthError(
                f"credentials were refused for {self.host} (token server {realm} answered "
                f"HTTP {response.status_code}); {CREDENTIALS_HINT}",
                registry=self.host,
                status_code=response.status_code,
                errors=parse_error_body(response),
            )
        try:
            document = response.json() if response.status_code == 200 else {}
        except ValueError:
            document = {}
        token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not token:
            raise RegistryAuthError(
                f"token server {realm} for {self.host} answered HTTP {response.status_code} without a token: "
                f"{_describe(response, parse_error_body(response))}",
                registry=self.host,
                status_code=response.status_code,
            )
        expires_in = document.get("expires_in")
        self._tokens.put(cache_key, token, float(expires_in) if isinstance(expires_in, int | float) else None)
        return str(token)

    def _no_credentials(self) -> NoReturn:
        raise RegistryAuthError(
            f"{self.host} requires authentication and no credentials are configured; "
            "set REGISTRY_USERNAME/REGISTRY_PASSWORD",
            registry=self.host,
            status_code=401,
        )

    def _fail(self, response: httpx.Response, what: str, error_class: type[RegistryError]) -> NoReturn:
        errors = parse_error_body(response)
        detail = _describe(response, errors)
        if response.status_code in (401, 403):
            if self._credentials is None:
                self._no_credentials()
            raise RegistryAuthError(
                f"credentials were refused for {self.host} while trying to {what} "
                f"(HTTP {response.status_code}: {detail}); {CREDENTIALS_HINT} and that the account "
                "has the needed access",
                registry=self.host,
                status_code=response.status_code,
                errors=errors,
            )
        raise error_class(
            f"{self.host} refused to {what}: HTTP {response.status_code}: {detail}",
            registry=self.host,
            status_code=response.status_code,
            errors=errors,
        )

    # -- internals: blobs --------------------------------------------------------------------

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

    # -- internals: manifests ----------------------------------------------------------------

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
