"""Reading small blobs (signature payloads, DSSE envelopes) from a registry.

:class:`~releases.oci.client.RegistryClient` pushes blobs but has no download; rather than reach
into its internals, this reader opens its own connection with the client's settings and
authentication hooks (:meth:`~releases.oci.client.RegistryClient.connection_settings`,
:meth:`~releases.oci.client.RegistryClient.authorization_for`,
:meth:`~releases.oci.client.RegistryClient.authorization_after_challenge`), the way
:mod:`releases.audit.probe` does. Every blob read is size-capped and checked against its digest.
"""

from __future__ import annotations

import logging
import time

import httpx

from releases.oci.auth import repository_scope
from releases.oci.client import RegistryClient, parse_error_body
from releases.oci.digest import verify_digest
from releases.oci.errors import DigestMismatch, RegistryAuthError, RegistryError, RegistryUnavailable
from releases.oci.names import validate_digest, validate_repository

logger = logging.getLogger(__name__)

#: Largest blob read: signature payloads and attestation envelopes are kilobytes; a registry
#: answering with more is refused rather than read into memory.
MAX_BLOB_BYTES = 4 * 1024 * 1024


class BlobReader:
    """GETs blobs of one registry through one connection pool; use as a context manager.

    Refuses (:class:`~releases.oci.errors.RegistryError`) a client that was built with its own
    httpx transport, since only that client can reach its registry then.
    """

    def __init__(self, client: RegistryClient, *, max_size: int = MAX_BLOB_BYTES) -> None:
        settings = client.connection_settings()
        if settings.custom_transport:
            raise RegistryError(
                f"cannot read blobs from {client.host}: the RegistryClient was given its own httpx transport, "
                "so no other connection may be opened to it; build the client without transport=",
                registry=client.host,
            )
        self._client = client
        self._base_url = f"{settings.scheme}://{settings.host}"
        self.max_size = max_size
        self._http = httpx.Client(
            verify=settings.verify,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={"User-Agent": settings.user_agent},
            follow_redirects=True,  # storage redirects; httpx drops Authorization on other origins
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, repository: str, digest: str, size: int | None = None) -> bytes:
        """The blob's bytes, checked against ``digest`` (and ``size`` when given).

        Raises :class:`~releases.oci.errors.RegistryError` with ``status_code`` 404 when the blob is
        absent, :class:`~releases.oci.errors.DigestMismatch` when the bytes do not match,
        ``RegistryError`` for a blob over :attr:`max_size`, :class:`RegistryAuthError` when access is
        refused and :class:`RegistryUnavailable` once 5xx answers or connection errors outlive the
        client's retries.
        """
        validate_repository(repository)
        validate_digest(digest)
        if size is not None and size > self.max_size:
            raise self._too_large(repository, digest, size)
        client = self._client
        attempt = 0
        while True:
            attempt += 1
            try:
                data, status = self._get(repository, digest)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if status < 500:
                    break
                reason = f"HTTP {status}"
            if attempt > client.retries:
                raise RegistryUnavailable(
                    f"registry {client.host} is unavailable ({reason}) while trying to read blob {digest} "
                    f"from {repository}; gave up after {attempt} attempts",
                    registry=client.host,
                )
            delay = min(client.backoff * 2 ** (attempt - 1), client.max_backoff)
            logger.warning("%s: %s reading blob %s, retrying in %.2fs", client.host, reason, digest, delay)
            time.sleep(delay)
        if size is not None and len(data) != size:
            raise DigestMismatch(
                f"blob {digest} in {repository} on {client.host} is {len(data)} bytes, the manifest says {size}",
                registry=client.host,
            )
        if not verify_digest(data, digest):
            raise DigestMismatch(
                f"blob {digest} in {repository} on {client.host} does not match its digest; the registry's "
                "storage is corrupt or was tampered with",
                registry=client.host,
            )
        return data

    def _get(self, repository: str, digest: str) -> tuple[bytes, int]:
        client = self._client
        scopes = (repository_scope(repository, "pull"),)
        url = f"{self._base_url}/v2/{repository}/blobs/{digest}"
        authorization = client.authorization_for(scopes)
        status, data, challenge = self._exchange(url, authorization, repository, digest)
        if status == 401:
            retry_with = client.authorization_after_challenge(challenge, scopes, rejected=authorization)
            if retry_with is not None and retry_with != authorization:
                status, data, challenge = self._exchange(url, retry_with, repository, digest)
        if status == 200 or status >= 500:
            return data, status
        what = f"read blob {digest} from {repository}"
        if status in (401, 403):
            raise RegistryAuthError(
                f"{client.host} refused to {what} (HTTP {status}); check the registry credentials and that "
                "the account may pull this repository",
                registry=client.host,
                status_code=status,
            )
        if status == 404:
            raise RegistryError(
                f"blob {digest} is not in {repository} on {client.host}", registry=client.host, status_code=404
            )
        raise RegistryError(f"{client.host} refused to {what}: HTTP {status}", registry=client.host, status_code=status)

    def _exchange(self, url: str, authorization: str | None, repository: str, digest: str) -> tuple[int, bytes, str]:
        headers = {"Authorization": authorization} if authorization else {}
        with self._http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                if response.status_code == 404:
                    logger.debug("blob %s absent: %s", digest, parse_error_body(response))
                return response.status_code, b"", response.headers.get("WWW-Authenticate", "")
            announced = response.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > self.max_size:
                raise self._too_large(repository, digest, int(announced))
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > self.max_size:
                    raise self._too_large(repository, digest, received)
                chunks.append(chunk)
            return 200, b"".join(chunks), ""

    def _too_large(self, repository: str, digest: str, size: int) -> RegistryError:
        return RegistryError(
            f"blob {digest} in {repository} is {size} bytes or more, over the {self.max_size}-byte limit for "
            "signature and attestation blobs; it is not a signature payload",
            registry=self._client.host,
        )
