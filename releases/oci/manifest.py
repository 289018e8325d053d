"""OCI descriptors and image manifests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from releases.oci.media_types import OCI_MANIFEST
from releases.oci.names import validate_digest


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor. Refuses a malformed digest or a negative size (``ValueError``)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_digest(self.digest)
        if self.size < 0:
            raise ValueError(f"descriptor size must be >= 0, got {self.size}")

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        document.update(self.extra)
        return document


@dataclass(frozen=True)
class ManifestRef:
    """What a manifest HEAD says: its digest, media type and size in bytes."""

    digest: str
    media_type: str
    size: int


def build_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    *,
    annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
) -> bytes:
    """Deterministic JSON of an OCI image manifest (``application/vnd.oci.image.manifest.v1+json``).

    Works for container images and for other artifacts such as Helm charts (config media type
    ``application/vnd.cncf.helm.config.v1+json``).
    """
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = dict(annotations)
    return canonical_json(document)
