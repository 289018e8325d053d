"""Keeping secrets and host paths out of what people and logs see. Plain Python.

Everything a worker writes where others can read it (failure reasons, chart problems, progress,
build logs, image labels, log lines) goes through ``scrub`` first: URLs lose their credentials,
configured secret values become ``[redacted]``, and the worker's own directories become short
labels, so a failure says what went wrong without telling where the worker keeps its files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

REDACTED = "[redacted]"
# Secrets shorter than this are not replaced in free text (they would mangle ordinary words).
MIN_SECRET_LENGTH = 6
_CREDENTIALS_RE = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` without ``user:password@``, its query and its fragment (tokens travel there too).

    ``git@host:org/repo`` (scp-like) loses its user; strings that are no URL are returned as they are.
    """
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if "@" in url and ":" in url.split("@", 1)[1]:
        return url.split("@", 1)[1]
    return url


def replacements(secrets: Iterable[str] = (), paths: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """What :func:`scrub` replaces after the URLs' credentials, in order: each secret (longest
    first) and its URL-encoded form by ``[redacted]``, then each directory (longest first) by its label."""
    found = []
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        found.append((secret, REDACTED))
        encoded = quote(secret, safe="")
        if encoded != secret:
            found.append((encoded, REDACTED))
    for path, label in sorted((paths or {}).items(), key=lambda item: len(item[0]), reverse=True):
        if path:
            found.append((path.rstrip("/"), label))
    return tuple(found)


def scrub(text: str, secrets: Iterable[str] = (), paths: Mapping[str, str] | None = None) -> str:
    """``text`` with credentials in URLs, the values of ``secrets`` (also URL-encoded) and the
    directories of ``paths`` (``{"/srv/worker/var/builds": "<build dir>"}``, longest first) replaced."""
    return _scrub(text, replacements(secrets, paths))


def _scrub(text: str, replaced: tuple[tuple[str, str], ...]) -> str:
    if not text:
        return text
    if "://" in text:  # what a URL with credentials has; the pattern is slow on long text without one
        text = _CREDENTIALS_RE.sub(r"\g<scheme>" + REDACTED + "@", text)
    for value, replacement in replaced:
        text = text.replace(value, replacement)
    return text


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs every record's message (arguments merged first)."""

    def __init__(self, secrets: Iterable[str] = (), paths: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.secrets = tuple(secrets)
        self.paths = dict(paths or {})
        # Sorted and URL-encoded once, not for every record.
        self.replacements = replacements(self.secrets, self.paths)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = _scrub(message, self.replacements)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _scrub(logging.Formatter().formatException(record.exc_info), self.replacements)
        elif record.exc_text:
            record.exc_text = _scrub(record.exc_text, self.replacements)
        return True
