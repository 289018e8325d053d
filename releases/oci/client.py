"""A thin OCI distribution client on httpx.

One :class:`RegistryClient` talks to one registry through one ``httpx.Client`` (connection reuse).
It pushes blobs in bounded memory (a streaming monolithic upload, or a chunked one for registries
that refuse those), mounts blobs across repositories, puts/heads/gets/deletes manifests, lists
tags, and enforces tag immutability. It honours rate limiting (HTTP 429, 503 with
``Retry-After``) for every request. It never reads ``os.environ``: credentials come from the
caller.

The client is one class over three modules, by concern: ``session`` (the connection: retries,
rate limits, authentication, errors), ``blobs`` (uploads and mounts) and ``manifests`` (manifests
and tags).
"""

from __future__ import annotations

from releases.oci.blobs import CHUNKED_UPLOAD_HOSTS, MONOLITHIC_REFUSALS, BlobSource, BlobTransfer
from releases.oci.manifests import ManifestOperations, PutResult
from releases.oci.session import (
    CREDENTIALS_HINT,
    DEFAULT_TIMEOUT,
    UPLOAD_CHUNK_SIZE,
    USER_AGENT,
    ConnectionSettings,
    parse_error_body,
)

__all__ = [
    "CHUNKED_UPLOAD_HOSTS",
    "CREDENTIALS_HINT",
    "DEFAULT_TIMEOUT",
    "MONOLITHIC_REFUSALS",
    "UPLOAD_CHUNK_SIZE",
    "USER_AGENT",
    "BlobSource",
    "ConnectionSettings",
    "PutResult",
    "RegistryClient",
    "parse_error_body",
]


class RegistryClient(BlobTransfer, ManifestOperations):
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
