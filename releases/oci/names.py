"""Validation of repository names, tags, digests and registry hosts (OCI distribution spec grammar).

Everything that ends up in a URL path goes through these checks first, so a caller cannot smuggle
``..``, ``?`` or ``/`` sequences into a request.
"""

from __future__ import annotations

import ipaddress
import re

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
_MAX_REPOSITORY_LENGTH = 255


def validate_repository(repository: str) -> str:
    """Return ``repository``; refuse (``ValueError``) anything outside the spec's name grammar."""
    if len(repository) > _MAX_REPOSITORY_LENGTH or not REPOSITORY_RE.fullmatch(repository):
        raise ValueError(f"invalid repository name {repository!r}")
    return repository


def validate_tag(tag: str) -> str:
    """Return ``tag``; refuse (``ValueError``) anything that is not a valid tag."""
    if not TAG_RE.fullmatch(tag):
        raise ValueError(f"invalid tag {tag!r}")
    return tag


def is_digest(reference: str) -> bool:
    """True when ``reference`` is a sha256/sha512 digest in canonical (lower-case hex) form."""
    return DIGEST_RE.fullmatch(reference) is not None


def validate_digest(digest: str) -> str:
    """Return ``digest``; refuse (``ValueError``) anything but ``sha256:<64 hex>``/``sha512:<128 hex>``."""
    if not is_digest(digest):
        raise ValueError(f"invalid digest {digest!r} (expected sha256:<64 lower-case hex>)")
    return digest


def validate_reference(reference: str) -> str:
    """Return ``reference`` if it is a tag or a digest; refuse (``ValueError``) anything else."""
    if is_digest(reference) or TAG_RE.fullmatch(reference):
        return reference
    raise ValueError(f"invalid manifest reference {reference!r} (expected a tag or a digest)")


def split_host_port(host: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 in brackets) into the bare host name and the port, if any."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError(f"invalid registry host {host!r}")
        name, rest = host[1:end], host[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid registry host {host!r}")
        return name, int(rest[1:]) if rest else None
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (with or without a port)."""
    name, _ = split_host_port(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def looks_like_host(component: str) -> bool:
    """Docker's rule for the first path component of a reference: a host has ``.`` or ``:``."""
    return "." in component or ":" in component or component == "localhost"
