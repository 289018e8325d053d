"""Is ``latest`` behind the highest published version? (a warning, not an immutability breach)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from releases.oci.names import validate_digest


class LatestStatus(StrEnum):
    """Where ``latest`` points, compared with the highest published version."""

    #: ``latest`` points at the highest published version's digest.
    CURRENT = "current"
    #: ``latest`` points at an older published version (``version_digests`` named it).
    BEHIND = "behind"
    #: ``latest`` points at content that is none of the known published versions.
    UNKNOWN = "unknown"
    #: There is no ``latest`` tag.
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class LatestCheck:
    """Verdict of :func:`latest_behind`. ``version`` is the published version ``latest`` points at
    when it is ``behind`` (from ``version_digests``)."""

    status: LatestStatus
    expected_digest: str
    live_digest: str | None
    version: str | None
    detail: str

    @property
    def behind(self) -> bool:
        """True unless ``latest`` is current: every other status deserves a warning."""
        return self.status is not LatestStatus.CURRENT


def latest_behind(
    highest_version_digest: str,
    live_latest_digest: str | None,
    version_digests: Mapping[str, str] | None = None,
) -> LatestCheck:
    """Compare the live ``latest`` digest with the highest published version's digest.

    ``live_latest_digest`` is ``None`` when ``latest`` does not exist (e.g. ``actual_digest`` of an
    :func:`~releases.audit.audit.audit_tags` result for ``latest`` whose status is ``missing``; do
    not call this for ``unreachable``/``error`` results: then nothing is known).
    ``version_digests`` maps digests of other published versions to their version strings; it
    only turns ``unknown`` into ``behind`` with the version named. Pure function, no I/O.
    Refuses (``ValueError``) malformed digests.
    """
    validate_digest(highest_version_digest)
    if live_latest_digest is None:
        detail = f"latest does not exist; the highest published version is {highest_version_digest}"
        return LatestCheck(LatestStatus.MISSING, highest_version_digest, None, None, detail)
    validate_digest(live_latest_digest)
    if live_latest_digest == highest_version_digest:
        return LatestCheck(LatestStatus.CURRENT, highest_version_digest, live_latest_digest, None, "")
    version = (version_digests or {}).get(live_latest_digest)
    if version is not None:
        detail = f"latest points at {version} ({live_latest_digest}), not at the highest published version"
        return LatestCheck(LatestStatus.BEHIND, highest_version_digest, live_latest_digest, version, detail)
    detail = (
        f"latest points at {live_latest_digest}, which is no known published version; "
        f"the highest published version is {highest_version_digest}"
    )
    return LatestCheck(LatestStatus.UNKNOWN, highest_version_digest, live_latest_digest, None, detail)
