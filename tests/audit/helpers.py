"""Pushing small images/charts for the audit tests, and a proxy that breaks chosen repositories."""

from __future__ import annotations

import json
from dataclasses import dataclass

from releases.oci import (
    Descriptor,
    PlatformManifest,
    RegistryClient,
    build_index,
    build_manifest,
    canonical_json,
    sha256_digest,
)
from releases.oci.media_types import HELM_CHART_CONTENT, HELM_CONFIG, OCI_INDEX, OCI_MANIFEST
from tests.fixtures.base_image import push_multiarch_base_image

PLATFORMS = frozenset({"linux/amd64", "linux/arm64"})


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str  # the index
    entries: tuple[PlatformManifest, ...]

    def entry(self, architecture: str) -> PlatformManifest:
        return next(entry for entry in self.entries if entry.architecture == architecture)


def push_image(client: RegistryClient, repository: str, tag: str) -> PushedImage:
    """The tiny two-platform base image (OCI index: linux/amd64 + linux/arm64/v8) as ``repository:tag``."""
    image = push_multiarch_base_image(client, repository, tag)
    body, _, _ = client.get_manifest(repository, image.index_digest)
    entries = tuple(
        PlatformManifest(
            digest=item["digest"],
            size=item["size"],
            os=item["platform"]["os"],
            architecture=item["platform"]["architecture"],
            variant=item["platform"].get("variant"),
            media_type=item["mediaType"],
        )
        for item in json.loads(body)["manifests"]
    )
    return PushedImage(repository, tag, image.index_digest, entries)


def put_index(
    client: RegistryClient, repository: str, tag: str, entries: list[PlatformManifest], **annotations: str
) -> str:
    """Overwrite ``repository:tag`` with an index of ``entries`` (annotations change the digest)."""
    return client.put_manifest(repository, tag, build_index(entries, annotations or None), OCI_INDEX)


def push_chart(client: RegistryClient, repository: str, tag: str, version: str) -> str:
    """A minimal Helm chart artifact (OCI manifest, Helm config media type)."""
    content = f"chart {repository} {version}".encode() * 10
    config = canonical_json({"apiVersion": "v2", "name": repository.rsplit("/", 1)[-1], "version": version})
    layer = Descriptor(HELM_CHART_CONTENT, sha256_digest(content), len(content))
    config_descriptor = Descriptor(HELM_CONFIG, sha256_digest(config), len(config))
    client.push_blob(repository, layer.digest, layer.size, content)
    client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
    manifest = build_manifest(config_descriptor, [layer])
    return client.put_manifest(repository, tag, manifest, OCI_MANIFEST)
