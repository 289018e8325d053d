"""A tiny, deterministic multi-arch base image (linux/amd64 + linux/arm64/v8), pushed with our client.

Builds here are offline (no Docker Hub), so the quick start and the tests push this image into
the local registry and build ``FROM`` it. It has one gzip'd layer with ``/etc/base-release`` (no
shell, no binaries), so it serves Dockerfiles that only ``COPY``/``ENV``/``LABEL``/``USER``.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass, field
from typing import Any

from releases.oci.client import RegistryClient
from releases.oci.digest import sha256_digest
from releases.oci.index import PlatformManifest, build_index
from releases.oci.manifest import Descriptor, build_manifest, canonical_json
from releases.oci.media_types import OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR_GZIP, OCI_MANIFEST

BASE_REPOSITORY = "base/tiny"
BASE_TAG = "1"
CREATED = "2024-01-01T00:00:00Z"
BASE_RELEASE = b"tiny-base 1\n"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PLATFORMS: tuple[tuple[str, str, str | None], ...] = (("linux", "amd64", None), ("linux", "arm64", "v8"))


@dataclass(frozen=True)
class BaseImage:
    """The pushed base image. ``str(image)`` is the reference, e.g. ``127.0.0.1:5000/base/tiny:1``."""

    reference: str
    registry: str
    repository: str
    tag: str
    index_digest: str
    manifest_digests: dict[str, str]  # "linux/amd64" / "linux/arm64/v8" -> manifest digest
    config_digests: dict[str, str]
    layer_digest: str
    diff_id: str
    platforms: tuple[str, ...] = field(default=())

    @property
    def pinned_reference(self) -> str:
        """``host/repo@sha256:...`` (the index digest)."""
        return f"{self.registry}/{self.repository}@{self.index_digest}"

    def __str__(self) -> str:
        return self.reference


def layer_tar() -> bytes:
    """Deterministic uncompressed layer: ``etc/`` and ``etc/base-release``, root-owned, mtime 0."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo("etc")
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        tar.addfile(directory)
        release = tarfile.TarInfo("etc/base-release")
        release.size = len(BASE_RELEASE)
        release.mode = 0o644
        tar.addfile(release, io.BytesIO(BASE_RELEASE))
    return buffer.getvalue()


def image_config(architecture: str, variant: str | None, diff_id: str) -> bytes:
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "releases/sandbox/tiny_base.py: ADD etc/base-release"}],
    }
    if variant:
        config["variant"] = variant
    return canonical_json(config)


def push_multiarch_base_image(
    client: RegistryClient, repository: str = BASE_REPOSITORY, tag: str = BASE_TAG
) -> BaseImage:
    """Push the layer, two configs, two manifests and the index; tag the index. Idempotent."""
    raw = layer_tar()
    diff_id = sha256_digest(raw)
    layer = gzip.compress(raw, compresslevel=9, mtime=0)
    layer_descriptor = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(layer), len(layer))
    client.push_blob(repository, layer_descriptor.digest, layer_descriptor.size, layer)
    entries: list[PlatformManifest] = []
    manifest_digests: dict[str, str] = {}
    config_digests: dict[str, str] = {}
    for os_name, architecture, variant in PLATFORMS:
        config = image_config(architecture, variant, diff_id)
        config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
        client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
        manifest = build_manifest(config_descriptor, [layer_descriptor])
        digest = client.put_manifest(repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
        entry = PlatformManifest(digest, len(manifest), os_name, architecture, variant)
        entries.append(entry)
        manifest_digests[entry.platform] = digest
        config_digests[entry.platform] = config_descriptor.digest
    index = build_index(entries)
    index_digest = client.put_manifest(repository, tag, index, OCI_INDEX)
    return BaseImage(
        reference=f"{client.host}/{repository}:{tag}",
        registry=client.host,
        repository=repository,
        tag=tag,
        index_digest=index_digest,
        manifest_digests=manifest_digests,
        config_digests=config_digests,
        layer_digest=layer_descriptor.digest,
        diff_id=diff_id,
        platforms=tuple(entry.platform for entry in entries),
    )
