"""A small, deterministic multi-arch base image (linux/amd64 + linux/arm64/v8), pushed with our client.

Builds here are offline (no Docker Hub), so the quick start, the tests and the benchmarks push this
image into the local registry and build ``FROM`` it. Two gzip'd layers: one shared by both
platforms (``/etc/base-release``, ``/etc/passwd``, ``/tmp``), and one per platform with Debian's
``busybox-static`` of that architecture (``/bin/busybox`` and its applets as symlinks, ``/bin/sh``
among them), so ``RUN`` steps have a shell on each platform. The ``.deb`` files come from
``bin/setup`` (``.tools/debs``); every entry has a fixed owner and mtime, so the digests are the
same on every machine with the same packages.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
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
PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = b"root:x:0:\napp:x:1000:\n"
MTIME = 1704067200  # CREATED
DEBS_DIR = Path(__file__).resolve().parents[2] / ".tools" / "debs"
# The applets the sample and the tests use (busybox runs the applet its argv[0] names).
APPLETS = (
    "sh", "ash", "cat", "chmod", "cp", "date", "echo", "env", "false", "grep", "head", "id", "ln",
    "ls", "mkdir", "mv", "printf", "pwd", "rm", "sed", "sleep", "sort", "tail", "tee", "test",
    "touch", "tr", "true", "uname", "wc", "wget", "which", "[",
)  # fmt: skip
_DEB_ARCH = {"amd64": "amd64", "arm64": "arm64"}


class BaseImageMissing(RuntimeError):
    """The busybox-static package of an architecture is not there: run bin/setup (as root)."""


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


def _entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = MTIME if name != "etc/base-release" else 0
    return info


def layer_tar() -> bytes:
    """The layer both platforms share: ``etc/base-release``, ``etc/passwd``/``group``, ``tmp/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = _entry("etc", tarfile.DIRTYPE, 0o755)
        directory.mtime = 0
        tar.addfile(directory)
        tar.addfile(_entry("etc/base-release", size=len(BASE_RELEASE)), io.BytesIO(BASE_RELEASE))
        tar.addfile(_entry("etc/group", size=len(GROUP)), io.BytesIO(GROUP))
        tar.addfile(_entry("etc/passwd", size=len(PASSWD)), io.BytesIO(PASSWD))
        for name, mode in (("home", 0o755), ("home/app", 0o755), ("root", 0o700), ("tmp", 0o1777)):
            tar.addfile(_entry(name, tarfile.DIRTYPE, mode))
    return buffer.getvalue()


def busybox_binary(architecture: str, debs_dir: Path = DEBS_DIR) -> bytes:
    """``/bin/busybox`` out of ``busybox-static_*_<arch>.deb`` (read with ``dpkg-deb``)."""
    found = sorted(Path(debs_dir).glob(f"busybox-static_*_{_DEB_ARCH[architecture]}.deb"))
    if not found:
        raise BaseImageMissing(
            f"no busybox-static package for {architecture} in {debs_dir}: run bin/setup as root "
            f"(it runs apt-get download busybox-static:{_DEB_ARCH[architecture]} there)"
        )
    try:
        data = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(found[-1])], check=True, capture_output=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise BaseImageMissing(f"cannot unpack {found[-1]} with dpkg-deb: {error}") from error
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("./bin/busybox")
        if member is None:
            raise BaseImageMissing(f"{found[-1]} has no /bin/busybox")
        return member.read()


def busybox_layer_tar(architecture: str, debs_dir: Path = DEBS_DIR) -> bytes:
    """The platform's layer: ``bin/busybox`` and a symlink to it for every applet in ``APPLETS``."""
    binary = busybox_binary(architecture, debs_dir)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry("bin", tarfile.DIRTYPE, 0o755))
        tar.addfile(_entry("bin/busybox", mode=0o755, size=len(binary)), io.BytesIO(binary))
        for applet in sorted(APPLETS):
            link = _entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
            link.linkname = "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def image_config(architecture: str, variant: str | None, diff_ids: list[str]) -> bytes:
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": CREATED, "created_by": "releases/sandbox/tiny_base.py: ADD etc/ tmp/"},
            {"created": CREATED, "created_by": f"releases/sandbox/tiny_base.py: ADD busybox-static ({architecture})"},
        ],
    }
    if variant:
        config["variant"] = variant
    return canonical_json(config)


def push_multiarch_base_image(
    client: RegistryClient, repository: str = BASE_REPOSITORY, tag: str = BASE_TAG, *, debs_dir: Path = DEBS_DIR
) -> BaseImage:
    """Push the layers, two configs, two manifests and the index; tag the index. Idempotent.

    Raises :class:`BaseImageMissing` (before pushing anything) when a busybox package is missing.
    """
    platform_layers = {arch: busybox_layer_tar(arch, debs_dir) for _, arch, _ in PLATFORMS}
    raw = layer_tar()
    diff_id = sha256_digest(raw)
    layer_descriptor = _push_layer(client, repository, raw)
    entries: list[PlatformManifest] = []
    manifest_digests: dict[str, str] = {}
    config_digests: dict[str, str] = {}
    for os_name, architecture, variant in PLATFORMS:
        own_raw = platform_layers[architecture]
        own_descriptor = _push_layer(client, repository, own_raw)
        config = image_config(architecture, variant, [diff_id, sha256_digest(own_raw)])
        config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
        client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
        manifest = build_manifest(config_descriptor, [layer_descriptor, own_descriptor])
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


def _push_layer(client: RegistryClient, repository: str, raw: bytes) -> Descriptor:
    layer = gzip.compress(raw, compresslevel=9, mtime=0)
    descriptor = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(layer), len(layer))
    client.push_blob(repository, descriptor.digest, descriptor.size, layer)
    return descriptor
