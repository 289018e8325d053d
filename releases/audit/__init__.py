"""Registry side of the scheduled tag-immutability audit (plain Python, no Django imports).

:func:`audit_tags` streams a :class:`TagResult` for each :class:`ExpectedTag` (ok, mismatch,
platform_drift, missing, unreachable, error) with bounded concurrency and flat memory;
:func:`latest_behind` says whether ``latest`` lags the highest published version.
"""

from releases.audit.audit import ENGINES, Engine, audit_tags, check_tag, index_platforms
from releases.audit.latest import LatestCheck, LatestStatus, latest_behind
from releases.audit.model import ExpectedTag, Kind, TagResult, TagStatus, normalize_platform, normalize_platforms
from releases.audit.probe import ManifestProber, fast_path_possible
from releases.audit.signatures import TagListing, content_due

__all__ = [
    "ENGINES",
    "Engine",
    "ExpectedTag",
    "Kind",
    "LatestCheck",
    "LatestStatus",
    "ManifestProber",
    "TagListing",
    "TagResult",
    "TagStatus",
    "audit_tags",
    "check_tag",
    "content_due",
    "fast_path_possible",
    "index_platforms",
    "latest_behind",
    "normalize_platform",
    "normalize_platforms",
]
