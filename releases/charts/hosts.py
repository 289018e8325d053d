"""Which hosts a chart's dependencies may be fetched from.

Commit authors are not trusted, and a dependency's repository is a URL they write: without a rule,
``helm dependency build`` on the worker would send requests wherever the worker can reach (the
cloud metadata endpoint 169.254.169.254, services on private addresses, its own loopback ports) and
helm's error would echo the answer into the chart's problems. :class:`DependencyHosts` is that rule,
in one of two modes the operator chooses:

* **Allowlist** (``CHART_DEPENDENCY_HOSTS`` set, the strict mode): only hosts matching one of its
  :class:`HostPattern` entries; any other host is refused without being resolved. An entry is a
  name or IP literal (``charts.example.com``, ``10.0.0.5``, ``[fd00::1]``: any port), the same with
  a port (``registry.internal:5000``: that port only), or a suffix wildcard (``*.example.com``:
  every name under example.com, not example.com itself).
* **Public hosts** (the default): a host must be a name that resolves, and every address it
  resolves to (``socket.getaddrinfo``), or the IP literal itself, must be public: loopback,
  private, link-local, multicast, reserved, unspecified and other non-global addresses are refused
  (an IPv4 address inside IPv6, ``::ffff:10.0.0.5`` or NAT64's ``64:ff9b::/96``, counts as that
  IPv4 address). The hosts the operator already trusts (the registry of ``REGISTRY_NAMESPACE``
  and the insecure registry hosts, ``host[:port]`` exactly as configured) are allowed whatever
  they resolve to: the only way to loopback or a private address without an allowlist.

The limits of the public mode, honestly: the check resolves the name, and helm resolves it again
when it connects, so a name whose DNS answer changes in between (DNS rebinding) gets past it; so
does a permitted host that answers with an HTTP redirect, or an OCI registry whose token realm or
blob redirect names another host (helm follows them; the chart download URLs of an ``http(s)``
repository's index.yaml are checked, see :mod:`.dependencies`). A worker that can reach anything
worth protecting should run with the allowlist, which does not depend on DNS, and with egress rules
of its network.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SETTING = "CHART_DEPENDENCY_HOSTS"
PUBLIC_ONLY = (
    f"chart dependencies may only come from public hosts or {SETTING}; take it from a public repository, or ask "
    f"the operator to list its host in {SETTING}"
)
NOT_LISTED = "take it from a host listed there (ask the operator which), or ask the operator to add this one"

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_DEFAULT_PORTS = {"http": 80, "https": 443, "oci": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _ip(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normal_host(host: str) -> str:
    """``host`` as compared: lower case, no trailing dot, an IP literal in its canonical form."""
    host = host.lower().rstrip(".")
    address = _ip(host)
    return str(address) if address is not None else host


@dataclass(frozen=True)
class HostPattern:
    """One entry of the allowlist: ``host`` (a normal name or IP literal; for a wildcard, the
    suffix after ``*.``), ``port`` (``None``: any port)."""

    host: str
    port: int | None = None
    wildcard: bool = False

    @classmethod
    def parse(cls, entry: str) -> HostPattern:
        """The pattern ``entry`` writes; ``ValueError`` saying what is wrong with it."""
        text = entry.strip().lower()
        usage = "use a host name, host:port or *.suffix, e.g. charts.example.com, registry.internal:5000, *.example.com"
        wildcard = text.startswith("*.")
        rest = text[2:] if wildcard else text
        if any(character in rest for character in "/@?#"):
            raise ValueError(f"{entry!r} is not a host: it may hold no scheme, user or path; {usage}")
        if rest.count(":") > 1 and not rest.startswith("["):
            raise ValueError(f"{entry!r} is not a host: write an IPv6 address in brackets, e.g. [fd00::1]:5000")
        if rest.startswith("["):
            host, bracket, tail = rest[1:].partition("]")
            if not bracket or not isinstance(_ip(host), ipaddress.IPv6Address):
                raise ValueError(f"{entry!r} is not a host: [...] must hold an IPv6 address; {usage}")
        else:
            host, colon, port = rest.partition(":")
            tail = colon + port
        if tail and not (tail.startswith(":") and _PORT_RE.fullmatch(tail[1:]) and 0 < int(tail[1:]) < 65536):
            raise ValueError(f"{entry!r} is not a host: the port must be a number from 1 to 65535; {usage}")
        host = host.rstrip(".")
        address = _ip(host)
        if wildcard and address is not None:
            raise ValueError(f"{entry!r} is not a host: a wildcard takes a domain name, not an address; {usage}")
        if address is None and not _NAME_RE.fullmatch(host):
            raise ValueError(f"{entry!r} is not a host: {usage} (letters, digits, dots and hyphens; * only in *.)")
        return cls(str(address) if address else host, int(tail[1:]) if tail else None, wildcard)

    def matches(self, host: str, port: int) -> bool:
        """Whether ``host`` (normal, see :func:`normal_host`) on ``port`` is one this entry allows."""
        if self.port is not None and self.port != port:
            return False
        return host.endswith("." + self.host) if self.wildcard else host == self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return ("*." if self.wildcard else "") + host + (f":{self.port}" if self.port else "")


def _trusted_host(entry: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit("//" + entry.strip())
        return (normal_host(parts.hostname), parts.port) if parts.hostname else None
    except ValueError:
        return None  # not a host; nothing to trust


def non_public_kind(address: Address) -> str | None:
    """What keeps ``address`` from being a public one (``"loopback"``, ``"private"``, ...), or ``None``."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    for kind, flagged in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flagged:
            return kind
    return None if address.is_global else "non-public"


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


@dataclass(frozen=True)
class DependencyHosts:
    """The rule for the hosts of chart dependencies (see the module docstring): ``allowed``, the
    allowlist (strict mode when not empty); ``trusted``, the hosts the operator already trusts."""

    allowed: tuple[HostPattern, ...] = ()
    trusted: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def configure(cls, allowed: Iterable[str] = (), trusted: Iterable[str] = ()) -> DependencyHosts:
        """From settings values: ``allowed`` patterns (``ValueError`` for a malformed one) and
        ``trusted`` ``host[:port]`` entries (one that is not a host trusts nothing)."""
        hosts = (_trusted_host(entry) for entry in trusted)
        return cls(tuple(HostPattern.parse(entry) for entry in allowed), frozenset(h for h in hosts if h))

    def refusal(self, url: str) -> str | None:
        """Why nothing may be fetched from ``url``'s host, worded to follow the URL ("is on a
        private address (10.0.0.5); ..."), or ``None`` when it may be."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            return "has an invalid port; correct the URL"
        if not parts.hostname:
            return "names no host; correct the URL"
        host = normal_host(parts.hostname)
        shown = f"[{host}]" if ":" in host else host
        if self.allowed:
            effective = port if port is not None else _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
            if any(pattern.matches(host, effective) for pattern in self.allowed):
                return None
            return f"is on {shown}{f':{port}' if port is not None else ''}, which {SETTING} does not list; {NOT_LISTED}"
        if (host, port) in self.trusted:
            return None
        literal = _ip(host)
        if literal is not None:
            kind = non_public_kind(literal)
            return f"is on {_article(kind)} {kind} address ({host}); {PUBLIC_ONLY}" if kind else None
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return f"is on {shown}, which does not resolve; correct the host name in the URL"
        addresses = sorted({normal_host(str(info[4][0]).partition("%")[0]) for info in found})
        if not addresses:
            return f"is on {shown}, which does not resolve; correct the host name in the URL"
        # One non-public address is enough: helm may connect to any of them.
        refused = [(kind, a) for a in addresses if (kind := non_public_kind(ipaddress.ip_address(a)))]
        if not refused:
            return None
        kind = refused[0][0]
        listed = ", ".join(address for _, address in refused)
        return f"is on {shown}, which resolves to {_article(kind)} {kind} address ({listed}); {PUBLIC_ONLY}"
