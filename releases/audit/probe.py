"""Cheap manifest HEADs for the audit: asyncio, one keep-alive HTTP/1.1 connection per worker.

Why not httpx on this path: measured on the 2-core development machine, a manifest HEAD costs
about 1.6 ms of client CPU through ``httpx.Client`` (threads), 0.35 ms through ``http.client``
(threads) and 0.15 ms here, while docker-registry needs about 2.3 ms per answer on the same
cores. The client's CPU is taken from the registry, so httpx capped the audit at about half of
what ``wrk`` gets from the same registry (see ``bench/audit_tags.py``).

Only the hot path lives here: a HEAD answered 200 with ``Docker-Content-Digest``, or 404, and
5xx answers, connection failures, timeouts and answers that are not HTTP/1.x (all retried with
the client's ``retries``/``backoff``/``max_backoff``, then ``RegistryUnavailable``). Rate
limiting (429, 503 with ``Retry-After``) is the client's too
(:meth:`~releases.oci.client.RegistryClient.honour_rate_limit`): it pauses the client's
:attr:`~releases.oci.client.RegistryClient.throttle`, which every prober (and every thread using
the client) waits for before sending, so the whole audit slows down together.
Authentication is :class:`~releases.oci.client.RegistryClient`'s own (its token cache, the realm
it learned, its credentials) through
:meth:`~releases.oci.client.RegistryClient.authorization_for` and
:meth:`~releases.oci.client.RegistryClient.authorization_after_challenge`; when those may do I/O
(fetching a token) they run in the executor, never on the event loop. Every other answer (401/403
after re-authenticating, 3xx, other 4xx, 200 without a digest) raises
:class:`NeedsFullClient`, and the caller asks :meth:`~releases.oci.client.RegistryClient.head_manifest`,
so such cases behave and read exactly as everywhere else.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from functools import partial
from typing import TypeVar

import httpx

from releases.oci.auth import repository_scope
from releases.oci.client import ConnectionSettings, RegistryClient
from releases.oci.errors import RegistryUnavailable
from releases.oci.manifest import ManifestRef
from releases.oci.throttle import THROTTLING_STATUSES

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Largest response head accepted (status line + headers).
MAX_HEAD_BYTES = 64 * 1024


class NeedsFullClient(Exception):  # noqa: N818 - a signal, not an error
    """The answer is not one the fast path handles; ask ``RegistryClient.head_manifest``."""


class _Transient(Exception):
    """A 5xx answer or a broken exchange: retried, then ``RegistryUnavailable``."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


#: Connection-level failures that are retried with backoff.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    _Transient,
    OSError,  # ConnectionError, TimeoutError, ssl.SSLError, socket.gaierror...
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
)


def proxied_by_environment(settings: ConnectionSettings) -> bool:
    """True when ``HTTP(S)_PROXY``/``ALL_PROXY`` (and not ``NO_PROXY``) send requests for this
    registry through a proxy: httpx honours those variables, the fast path does not."""
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(settings.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(settings.host, proxies)  # type: ignore[attr-defined]


def fast_path_possible(client: RegistryClient) -> bool:
    """Whether :class:`ManifestProber` may talk to the client's registry itself: not when the
    client was given its own httpx transport or the environment configures a proxy for it."""
    settings = client.connection_settings()
    return not settings.custom_transport and not proxied_by_environment(settings)


class ManifestProber:
    """Manifest HEADs over one keep-alive connection; for one coroutine at a time, on one loop.

    :meth:`head` returns a :class:`ManifestRef`, or ``None`` for 404; waits while the client's
    :attr:`~releases.oci.client.RegistryClient.throttle` holds requests; raises
    :class:`~releases.oci.errors.RegistryUnavailable` once 5xx answers / connection errors outlive
    the client's retries or rate limiting outlives its patience,
    :class:`~releases.oci.errors.RegistryAuthError` when the token server refuses the credentials,
    and :class:`NeedsFullClient` for anything else. It validates nothing: repository and
    reference go into the request line verbatim, so they must already be valid
    (:class:`~releases.audit.model.ExpectedTag` validates them). Reads time out (the client's read
    timeout) only while :func:`enforce_read_timeouts` watches the prober; connects always do.
    Call :meth:`close` when done.
    """

    def __init__(self, client: RegistryClient, executor: Executor, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._executor = executor
        self._clock = clock  # read deadlines are on this clock (see enforce_read_timeouts)
        settings = client.connection_settings()
        self._settings = settings
        self._host, self._port = _split(settings.host, 443 if settings.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if settings.scheme == "https":
            self._ssl = httpx.create_ssl_context(verify=settings.verify)
        accept = ", ".join(client.manifest_accept)
        self._fixed_headers = f"Host: {settings.host}\r\nAccept: {accept}\r\nUser-Agent: {settings.user_agent}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = False
        self._deadline: float | None = None  # loop time by which the answer must have arrived
        self._timed_out = False

    def close(self) -> None:
        """Close the connection (a later :meth:`head` opens a new one)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        self._used = False

    def check_deadline(self, now: float) -> None:
        """Abort the exchange in flight when its answer is overdue (:func:`enforce_read_timeouts`)."""
        if self._deadline is not None and now > self._deadline and self._writer is not None:
            self._timed_out = True
            self._writer.transport.abort()

    async def head(self, repository: str, reference: str) -> ManifestRef | None:
        """Digest, media type and size of ``repository:reference``; ``None`` when absent (404)."""
        client = self._client
        scopes = (repository_scope(repository, "pull"),)
        request_line = f"HEAD /v2/{repository}/manifests/{reference} HTTP/1.1\r\n"
        attempt = throttled = 0
        while True:
            try:
                pause = client.throttle.remaining()
                if pause > 0:
                    await asyncio.sleep(pause)
                authorization = client.authorization_for(scopes, fetch=False)  # never does I/O
                if authorization is None and client.token_auth_active:
                    authorization = await self._offload(partial(client.authorization_for, scopes))
                status, headers = await self._exchange(request_line, authorization)
                if status == 401:
                    challenge, rejected = headers.get("www-authenticate", ""), authorization
                    authorization = await self._offload(
                        partial(client.authorization_after_challenge, challenge, scopes, rejected=rejected)
                    )
                    if authorization is not None and authorization != rejected:
                        status, headers = await self._exchange(request_line, authorization)
                if status in THROTTLING_STATUSES:
                    throttled += 1
                    what = f"check manifest {repository}:{reference}"
                    if client.honour_rate_limit(status, headers.get("retry-after"), throttled, what):
                        continue  # after the pause, which the loop's next turn waits for
                if status >= 500:
                    raise _Transient(f"HTTP {status}")
                break
            except TRANSIENT_ERRORS as exc:
                attempt += 1
                reason = exc.description if isinstance(exc, _Transient) else f"{type(exc).__name__}: {exc}"
                if attempt > client.retries:
                    raise RegistryUnavailable(
                        f"registry {client.host} is unavailable ({reason}) while trying to check manifest "
                        f"{repository}:{reference}; gave up after {attempt} attempt{'s' if attempt > 1 else ''}",
                        registry=client.host,
                    ) from exc
                delay = min(client.backoff * 2 ** (attempt - 1), client.max_backoff)
                message = "%s: %s (attempt %d/%d), retrying in %.2fs"
                logger.warning(message, client.host, reason, attempt, client.retries + 1, delay)
                await asyncio.sleep(delay)
        if status == 404:
            return None
        digest = headers.get("docker-content-digest") if status == 200 else None
        if not digest:
            raise NeedsFullClient(f"HTTP {status}")
        media_type = headers.get("content-type", "").split(";")[0].strip()
        size = headers.get("content-length", "0")
        return ManifestRef(digest=digest, media_type=media_type, size=int(size) if size.isdigit() else 0)

    # -- internals ---------------------------------------------------------------------------

    def _offload(self, call: Callable[[], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _exchange(self, request_line: str, authorization: str | None) -> tuple[int, dict[str, str]]:
        auth_line = f"Authorization: {authorization}\r\n" if authorization else ""
        request = f"{request_line}{self._fixed_headers}{auth_line}\r\n".encode("latin-1")
        for attempt in (1, 2):
            if self._writer is None:
                await self._open()
            reused = self._used and attempt == 1
            reader, writer = self._reader, self._writer
            assert reader is not None and writer is not None
            read_timeout = self._settings.read_timeout
            try:
                writer.write(request)
                if read_timeout is not None:
                    self._deadline = self._clock() + read_timeout
                status, headers, keep_alive = _parse_head(await reader.readuntil(b"\r\n\r\n"))
                while 100 <= status < 200:  # interim answers precede the real one
                    status, headers, keep_alive = _parse_head(await reader.readuntil(b"\r\n\r\n"))
                if self._timed_out:  # aborted, but the whole answer had arrived: use it, reconnect later
                    self._timed_out = False
                    keep_alive = False
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if self._timed_out:
                    self._timed_out = False
                    raise TimeoutError(f"no answer within {read_timeout} s") from exc
                nothing_read = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if reused and nothing_read:
                    continue  # the server closed the idle kept-alive connection: reconnect once
                raise
            except BaseException:
                self.close()
                raise
            finally:
                self._deadline = None
            self._used = True
            if not keep_alive:
                self.close()
            return status, headers
        raise AssertionError("not reached")  # pragma: no cover - the loop returns or raises

    async def _open(self) -> None:
        async with asyncio.timeout(self._settings.connect_timeout):
            self._reader, self._writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
                limit=MAX_HEAD_BYTES,
            )
        self._used = False
        self._timed_out = False


async def enforce_read_timeouts(
    probers: Iterable[ManifestProber], interval: float = 1.0, clock: Callable[[], float] = time.monotonic
) -> None:
    """Run forever (cancel it when done): every ``interval`` seconds, abort the exchanges of
    ``probers`` whose answer is overdue on ``clock`` (the probers' clock); they then fail with
    ``TimeoutError`` (retried). Without it, :class:`ManifestProber` never times out a read.

    One watchdog for all connections instead of a timer per request: ``asyncio.timeout`` per
    HEAD cost about 35 us of CPU, a fifth of the whole request.
    """
    while True:
        await asyncio.sleep(interval)
        now = clock()
        for prober in probers:
            prober.check_deadline(now)


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """``(status, headers with lower-case names, keep_alive)`` of an HTTP/1.x response head.

    Raises ``_Transient`` (retried on a new connection) for anything that is not HTTP/1.x.
    """
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise _Transient(f"malformed HTTP status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, separator, value = line.partition(":")
        if not separator or not name or name[0] in " \t":
            if not line:
                continue
            raise _Transient(f"malformed HTTP header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection")
    if connection is None:
        return int(code), headers, version != "HTTP/1.0"
    tokens = {token.strip().lower() for token in connection.split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return int(code), headers, keep_alive


def _split(host: str, default_port: int) -> tuple[str, int]:
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else default_port
    name, separator, port = host.rpartition(":")
    return (name, int(port)) if separator else (host, default_port)
