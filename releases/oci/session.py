"""The connection to one OCI registry that every operation shares: the httpx client, plain-HTTP
policy, retries with backoff, rate limiting (429, 503 with ``Retry-After``), authentication (basic,
or bearer tokens from the registry's token server, cached per scope) and error mapping.
:class:`~releases.oci.client.RegistryClient` adds blob and manifest operations on top."""

from __future__ import annotations

import functools
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn, Self, TypeVar

import httpx

from releases.oci.auth import Challenge, Credentials, TokenCache, merge_scopes, parse_www_authenticate
from releases.oci.digest import CHUNK_SIZE
from releases.oci.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryErrorDetail,
    RegistryUnavailable,
)
from releases.oci.media_types import DEFAULT_MANIFEST_ACCEPT
from releases.oci.names import (
    is_loopback,
)
from releases.oci.throttle import THROTTLING_STATUSES, Throttle, parse_retry_after

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
USER_AGENT = "releases-oci/1"
CREDENTIALS_HINT = "check REGISTRY_USERNAME/REGISTRY_PASSWORD"
#: Size of the PATCH requests of a chunked upload (each is streamed in ``chunk_size`` pieces).
UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """The verifying TLS context every client without one of its own shares (httpx's default: the
    certifi bundle, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` honoured). Loading the bundle costs about
    20 ms of CPU, which each new client paid when httpx built a context per client; a release
    opens a dozen clients."""
    return httpx.create_ssl_context()


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


class RegistrySession:
    """The shared connection of a :class:`~releases.oci.client.RegistryClient` (see its docstring
    for the policies); use the client, not this class."""

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
        if verify is True:
            verify = default_tls_context()
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

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        user = self._credentials.username if self._credentials else None
        return f"RegistryClient({self.base_url!r}, username={user!r})"

    def check(self) -> None:
        """``GET /v2/``: returns when the registry answers and accepts the credentials.

        Raises :class:`RegistryUnavailable` or :class:`RegistryAuthError` otherwise.
        """
        response = self._send("GET", f"{self.base_url}/v2/", scopes=(), what="reach the API (/v2/)")
        if response.status_code != 200:
            self._fail(response, "reach the API (/v2/)", RegistryError)

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
