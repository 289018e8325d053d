"""Registry authentication: ``WWW-Authenticate`` challenges, scopes, credentials and a token cache.

The flow follows the distribution token spec as ghcr.io, Docker Hub and docker-registry use it:
a request answered with ``401`` + ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``
makes the client ask ``GET <realm>?service=<service>&scope=<scope>...`` (with HTTP basic
credentials when it has them) for a token, then repeat the request once with
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

_CHALLENGE_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')
_SCHEME_RE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_.-]*)(?:\s+|$)")

#: Tokens are refreshed this many seconds before they expire.
EXPIRY_MARGIN = 10.0
#: ``expires_in`` assumed when the token server does not send one (token spec default).
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Credentials:
    """Username and password (or personal access token) for basic auth and token requests."""

    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header, e.g. ``Bearer realm="...",service="..."``."""

    scheme: str
    params: dict[str, str]

    @property
    def is_bearer(self) -> bool:
        return self.scheme.lower() == "bearer"

    @property
    def is_basic(self) -> bool:
        return self.scheme.lower() == "basic"

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The challenge's scopes (``scope`` may list several, separated by spaces)."""
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        """``insufficient_scope``, ``invalid_token``... when the registry says why it refused."""
        return self.params.get("error")


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into challenges; unknown syntax yields fewer challenges.

    Handles quoted values containing commas (``scope="repository:a:pull,push"``) and several
    challenges in one header.
    """
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme_match = _SCHEME_RE.match(header, position)
        if not scheme_match:
            break
        scheme = scheme_match.group(1)
        position = scheme_match.end()
        params: dict[str, str] = {}
        while position < len(header):
            param_match = _CHALLENGE_PARAM_RE.match(header, position)
            if not param_match:
                break
            key, value = param_match.group(1), param_match.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[key.lower()] = value
            position = param_match.end()
        challenges.append(Challenge(scheme=scheme, params=params))
        # Skip separators before the next challenge.
        while position < len(header) and header[position] in ", ":
            position += 1
    return challenges


def repository_scope(repository: str, *actions: str) -> str:
    """``repository:<name>:<actions>``, e.g. ``repository:team/app:pull,push``."""
    return f"repository:{repository}:{','.join(actions)}"


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Merge scopes naming the same resource (union of actions); deterministic order.

    ``["repository:a:pull", "repository:a:push", "repository:b:pull"]`` becomes
    ``("repository:a:pull,push", "repository:b:pull")``. Malformed scopes are kept verbatim.
    """
    merged: dict[tuple[str, str], set[str]] = {}
    verbatim: set[str] = set()
    for scope in scopes:
        resource, sep, actions = scope.rpartition(":")
        kind, sep2, name = resource.partition(":")
        if not sep or not sep2 or not name:
            verbatim.add(scope)
            continue
        merged.setdefault((kind, name), set()).update(a for a in actions.split(",") if a)
    order = {"pull": 0, "push": 1, "delete": 2}
    result = [
        f"{kind}:{name}:{','.join(sorted(actions, key=lambda a: (order.get(a, 9), a)))}"
        for (kind, name), actions in sorted(merged.items())
    ]
    return tuple(result) + tuple(sorted(verbatim))


@dataclass
class _CachedToken:
    token: str
    expires_at: float


class TokenCache:
    """Bearer tokens keyed by the set of scopes they were requested for; thread-safe.

    Expired tokens (minus :data:`EXPIRY_MARGIN`) are never returned.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, ...], _CachedToken] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(scopes: Iterable[str]) -> tuple[str, ...]:
        return merge_scopes(scopes)

    def get(self, scopes: Iterable[str]) -> str | None:
        key = self.key(scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is None:
                return None
            if time.monotonic() >= cached.expires_at:
                del self._tokens[key]
                return None
            return cached.token

    def put(self, scopes: Iterable[str], token: str, expires_in: float | None) -> None:
        lifetime = DEFAULT_TOKEN_LIFETIME if not expires_in or expires_in <= 0 else float(expires_in)
        expires_at = time.monotonic() + max(lifetime - EXPIRY_MARGIN, lifetime / 2)
        with self._lock:
            self._tokens[self.key(scopes)] = _CachedToken(token, expires_at)

    def discard(self, scopes: Iterable[str]) -> None:
        with self._lock:
            self._tokens.pop(self.key(scopes), None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)
