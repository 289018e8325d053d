"""Multi-platform OCI image indexes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from releases.oci.manifest import canonical_json
from releases.oci.media_types import IMAGE_MANIFEST_MEDIA_TYPES, OCI_INDEX, OCI_MANIFEST
from releases.oci.names import validate_digest


@dataclass(frozen=True)
class PlatformManifest:
    """One platform's image manifest inside an index.

    Refuses (``ValueError``) a malformed digest, a non-positive size, an empty os/architecture or
    a media type that is not an image manifest.
    """

    digest: str
    size: int
    os: str
    architecture: str
    variant: str | None = None
    media_type: str = OCI_MANIFEST

    def __post_init__(self) -> None:
        validate_digest(self.digest)
        if self.size <= 0:
            raise ValueError(f"manifest size must be > 0, got {self.size}")
        if not self.os or not self.architecture:
            raise ValueError("platform needs both os and architecture")
        if self.media_type not in IMAGE_MANIFEST_MEDIA_TYPES:
            raise ValueError(f"an index entry must be an image manifest, not {self.media_type!r}")

    @property
    def platform(self) -> str:
        """``os/architecture[/variant]``, e.g. ``linux/arm64/v8``."""
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)

    def to_json(self) -> dict[str, Any]:
        platform: dict[str, str] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            platform["variant"] = self.variant
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, "platform": platform}


def build_index(manifests: Sequence[PlatformManifest], annotations: Mapping[str, str] | None = None) -> bytes:
    """Deterministic JSON of an OCI image index (``application/vnd.oci.image.index.v1+json``).

    Entries are sorted by platform, so the bytes (and the digest) do not depend on the order in
    which builds finished. Refuses (``ValueError``) an empty list and two entries for one platform.
    """
    if not manifests:
        raise ValueError("an index needs at least one manifest")
    seen: dict[str, str] = {}
    for manifest in manifests:
        if manifest.platform in seen:
            first = seen[manifest.platform]
            raise ValueError(f"platform {manifest.platform} appears twice ({first} and {manifest.digest})")
        seen[manifest.platform] = manifest.digest
    ordered = sorted(manifests, key=lambda m: (m.os, m.architecture, m.variant or "", m.digest))
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [manifest.to_json() for manifest in ordered],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return canonical_json(document)
