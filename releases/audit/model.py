"""What the tag audit is given (:class:`ExpectedTag`) and what it reports (:class:`TagResult`)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from releases.oci.names import validate_digest, validate_repository, validate_tag

Kind = Literal["image", "chart"]
KINDS: frozenset[str] = frozenset({"image", "chart"})

#: ``arch -> variant`` that is the architecture's default and therefore dropped when platforms are
#: compared (``linux/arm64/v8`` is ``linux/arm64``, as containerd and buildx treat it).
DEFAULT_VARIANTS = {"arm64": "v8", "amd64": "v1"}


class TagStatus(StrEnum):
    """Outcome of auditing one tag. Members compare equal to their string values."""

    #: The tag points at the expected digest (identical content, so identical platforms).
    OK = "ok"
    #: The tag points at another digest. For images whose platforms were checked, the live
    #: index still lists exactly the expected platforms (or they could not be read: see detail).
    MISMATCH = "mismatch"
    #: The tag points at another digest *and* the live manifest no longer serves exactly the
    #: expected platforms. Always a digest mismatch too (see :attr:`TagResult.digest_changed`).
    PLATFORM_DRIFT = "platform_drift"
    #: The registry answered 404 for the tag, confirmed by a GET (tag or repository gone).
    MISSING = "missing"
    #: 5xx answers or connection errors after every retry. Never reported as missing.
    UNREACHABLE = "unreachable"
    #: The registry answered, but not usably: credentials refused (401/403), another 4xx,
    #: a malformed answer. Neither ok nor missing; the detail says what happened.
    ERROR = "error"


def normalize_platform(platform: str) -> str:
    """``os/arch[/variant]`` in lower case, without the architecture's default variant.

    ``"linux/arm64/v8"`` -> ``"linux/arm64"``; ``"linux/arm/v7"`` stays. Refuses (``ValueError``)
    anything without both an os and an architecture, or with more than three parts.
    """
    parts = platform.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform must be os/arch[/variant], got {platform!r}")
    if len(parts) == 3 and DEFAULT_VARIANTS.get(parts[1]) == parts[2]:
        parts = parts[:2]
    return "/".join(parts)


def normalize_platforms(platforms: Iterable[str]) -> frozenset[str]:
    """:func:`normalize_platform` applied to each; refuses a bare string (``TypeError``)."""
    if isinstance(platforms, str):
        raise TypeError("platforms must be a collection of strings, not one string")
    return frozenset(normalize_platform(platform) for platform in platforms)


@functools.lru_cache(maxsize=256)
def _normalized(platforms: frozenset[str]) -> frozenset[str]:
    return normalize_platforms(platforms)


@dataclass(frozen=True, slots=True)
class ExpectedTag:
    """One published tag and the digest it must still point at.

    ``key`` is an opaque id handed back unchanged in :attr:`TagResult.expected`. ``platforms``
    (images only) are ``os/arch[/variant]`` strings, stored normalised (see
    :func:`normalize_platform`); ``None`` means "do not check platforms".
    Refuses (``ValueError``): an invalid repository name, tag or digest, a kind other than
    ``"image"``/``"chart"``, platforms given for a chart, an empty platform set, malformed
    platforms. Refuses (``TypeError``) a bare string as ``platforms``.
    """

    key: str
    repository: str
    tag: str
    digest: str
    kind: Kind = "image"
    platforms: frozenset[str] | None = None

    def __post_init__(self) -> None:
        validate_repository(self.repository)
        validate_tag(self.tag)
        validate_digest(self.digest)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'image' or 'chart', got {self.kind!r}")
        if self.platforms is not None:
            if self.kind != "image":
                raise ValueError("platforms can only be given for images")
            if isinstance(self.platforms, frozenset):
                platforms = _normalized(self.platforms)  # the same few sets come again and again
            else:
                platforms = normalize_platforms(self.platforms)
            if not platforms:
                raise ValueError("platforms must not be empty (use None to skip the platform check)")
            object.__setattr__(self, "platforms", platforms)

    @property
    def reference(self) -> str:
        """``repository:tag``."""
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True, slots=True)
class TagResult:
    """The audit's verdict on one :class:`ExpectedTag`.

    ``actual_digest`` is what the tag points at now (``None`` when missing, unreachable or
    error). ``live_platforms`` (normalised) is set only when the live manifest was fetched,
    i.e. for images with expected platforms whose digest changed.
    """

    expected: ExpectedTag
    status: TagStatus
    actual_digest: str | None = None
    detail: str = ""
    live_platforms: frozenset[str] | None = None

    @property
    def ok(self) -> bool:
        return self.status is TagStatus.OK

    @property
    def digest_changed(self) -> bool:
        """True for ``mismatch`` and ``platform_drift``: the tag now points at other content."""
        return self.status in (TagStatus.MISMATCH, TagStatus.PLATFORM_DRIFT)
