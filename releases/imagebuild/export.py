"""Turn an image saved by the Docker engine into an OCI image layout with gzip layers on disk.

``docker save`` streams a tar; Docker 20.10 writes the legacy layout (``manifest.json``,
``<config>.json``, ``<id>/layer.tar``), Docker 25+ an OCI layout (``index.json``, ``blobs/sha256``)
that also carries ``manifest.json``. Both are read in one pass over the stream: small files (JSON)
are kept in memory, everything else is hashed and gzip-compressed to ``workdir`` as it arrives, so
the image is never held in memory.

Compression is deterministic (gzip mtime 0, no file name, fixed level), so exporting the same
image twice gives the same layer digests and the same manifest digest.

The export directory is an OCI image layout (image-spec ``image-layout.md``): ``oci-layout``,
``index.json`` naming the one manifest with its platform, and the blobs under ``blobs/sha256``, so
syft, trivy (``--input``) and grype (``oci-dir:``) read it as it is.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import posixpath
import shutil
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors

from releases.imagebuild.errors import ENGINE_UNAVAILABLE_ERRORS, EngineUnavailable, ExportError
from releases.imagebuild.layer_cache import LayerCache
from releases.oci.digest import sha256_digest
from releases.oci.index import PlatformManifest, build_index
from releases.oci.manifest import Descriptor, build_manifest
from releases.oci.media_types import INDEX_MEDIA_TYPES, OCI_CONFIG, OCI_LAYER_TAR_GZIP, OCI_MANIFEST

OCI_LAYER_GZIP = OCI_LAYER_TAR_GZIP

GZIP_LEVEL = 6
CHUNK = 1024 * 1024
SMALL_FILE_LIMIT = 64 * 1024  # non-JSON files up to this size are kept in memory
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
OCI_LAYOUT_FILE = "oci-layout"
OCI_LAYOUT_BYTES = b'{"imageLayoutVersion": "1.0.0"}'
OCI_INDEX_FILE = "index.json"


@dataclass(frozen=True)
class Blob:
    """A content-addressed file: ``digest`` is ``sha256:<hex>`` of the bytes at ``path``."""

    path: Path
    digest: str
    size: int
    media_type: str

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


@dataclass
class ExportedImage:
    """One platform's image, ready to push: config + gzip layers + OCI manifest."""

    config_bytes: bytes
    config_digest: str
    layers: list[Blob]
    manifest_bytes: bytes
    manifest_digest: str
    architecture: str
    os: str
    variant: str | None
    labels: dict[str, str]
    user: str
    size: int
    created: str | None
    diff_ids: list[str] = field(default_factory=list)
    config_path: Path | None = None
    manifest_path: Path | None = None
    layout_dir: Path | None = None  # the OCI image layout holding this image (scanners read it)

    @property
    def platform(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def created_at(self) -> datetime | None:
        """``created`` as an aware datetime (nanoseconds truncated), or ``None``."""
        if not self.created:
            return None
        text = self.created.replace("Z", "+00:00")
        if "." in text:
            head, _, rest = text.partition(".")
            digits = "".join(itertools.takewhile(str.isdigit, rest))
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
        return datetime.fromisoformat(text)

    def config_descriptor(self) -> Descriptor:
        return Descriptor(OCI_CONFIG, self.config_digest, len(self.config_bytes))

    def platform_manifest(self) -> PlatformManifest:
        """This image's entry for an OCI image index (:func:`releases.oci.build_index`)."""
        return PlatformManifest(
            digest=self.manifest_digest,
            size=len(self.manifest_bytes),
            os=self.os,
            architecture=self.architecture,
            variant=self.variant,
            media_type=OCI_MANIFEST,
        )


class _ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks (the engine's HTTP stream)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


@dataclass
class _Streamed:
    """A large file of the saved tar, already compressed to ``gz_path``."""

    raw_digest: str  # digest of the bytes as saved (= the blob name in an OCI layout)
    diff_id: str  # digest of the uncompressed tar
    gz_path: Path
    gz_digest: str
    gz_size: int
    compressed_input: bool


class HashingWriter(io.RawIOBase):
    """Write to ``target`` while hashing and counting what is written."""

    def __init__(self, target: IO[bytes]):
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hash.update(view)
        self.size += view.nbytes
        self.target.write(view)
        return view.nbytes


class _Unpacked:
    """The bytes of a saved file as they are read: decompressed when they were gzip'd, and hashed
    both as saved (the blob name in an OCI layout) and uncompressed (the ``diff_id``)."""

    def __init__(self, source: IO[bytes]):
        self.source = source
        self.raw_hash = hashlib.sha256()
        self.plain_hash = hashlib.sha256()
        self.compressed_input = False

    def chunks(self) -> Iterator[bytes]:
        decompressor: Any = None
        first = True
        while chunk := self.source.read(CHUNK):
            self.raw_hash.update(chunk)
            if first:
                first = False
                if chunk.startswith(_ZSTD_MAGIC):
                    raise ExportError("zstd-compressed layers in the saved image are not supported")
                if chunk.startswith(_GZIP_MAGIC):
                    decompressor = zlib.decompressobj(wbits=31)
                    self.compressed_input = True
            plain = decompressor.decompress(chunk) if decompressor is not None else chunk
            self.plain_hash.update(plain)
            yield plain
        if decompressor is not None:
            rest = decompressor.flush()
            self.plain_hash.update(rest)
            yield rest

    @property
    def raw_digest(self) -> str:
        return "sha256:" + self.raw_hash.hexdigest()

    @property
    def diff_id(self) -> str:
        return "sha256:" + self.plain_hash.hexdigest()


def _compress_stream(source: IO[bytes], target: Path, level: int) -> _Streamed:
    """Gzip ``source`` deterministically into ``target`` (mtime 0, no name, fixed level).

    A source that is already gzip-compressed is decompressed first (its diff_id is the digest of
    the uncompressed tar) and recompressed deterministically.
    """
    unpacked = _Unpacked(source)
    with target.open("wb") as out:
        writer = HashingWriter(out)
        with gzip.GzipFile(filename="", mode="wb", fileobj=writer, compresslevel=level, mtime=0) as gz:
            for plain in unpacked.chunks():
                gz.write(plain)
    return _Streamed(
        raw_digest=unpacked.raw_digest,
        diff_id=unpacked.diff_id,
        gz_path=target,
        gz_digest="sha256:" + writer.hash.hexdigest(),
        gz_size=writer.size,
        compressed_input=unpacked.compressed_input,
    )


def _compress_with_cache(source: IO[bytes], target: Path, level: int, cache: LayerCache) -> _Streamed:
    """Like :func:`_compress_stream`, taking the blob from ``cache`` when it holds this layer: the
    layer is first written uncompressed (its ``diff_id`` is known only at its end), then linked from
    the cache or compressed and kept there."""
    plain = target.with_name(target.name + ".plain")
    unpacked = _Unpacked(source)
    try:
        with plain.open("wb") as out:
            for chunk in unpacked.chunks():
                out.write(chunk)
        cached = cache.fetch(unpacked.diff_id, level, target)
        if cached is not None:
            return _Streamed(
                unpacked.raw_digest, unpacked.diff_id, target, cached.digest, cached.size, unpacked.compressed_input
            )
        with plain.open("rb") as layer:
            streamed = _compress_stream(layer, target, level)
    finally:
        plain.unlink(missing_ok=True)
    cache.keep(unpacked.diff_id, level, target)
    return _Streamed(
        unpacked.raw_digest, unpacked.diff_id, target, streamed.gz_digest, streamed.gz_size, unpacked.compressed_input
    )


class _SavedArchive:
    """The files of a ``docker save`` tar: small ones in memory, large ones compressed on disk."""

    def __init__(self, workdir: Path, level: int, cache: LayerCache | None = None):
        self.workdir = workdir
        self.level = level
        self.cache = cache
        self.small: dict[str, bytes] = {}
        self.streamed: dict[str, _Streamed] = {}
        self.links: dict[str, str] = {}
        self._counter = itertools.count()

    def read(self, fileobj: IO[bytes]) -> None:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("/"))
                if member.issym():
                    self.links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                elif member.islnk():
                    self.links[name] = posixpath.normpath(member.linkname.lstrip("/"))
                elif member.isreg():
                    source = tar.extractfile(member)
                    assert source is not None
                    keep = name.endswith(".json") or (
                        member.size <= SMALL_FILE_LIMIT and posixpath.basename(name) != "layer.tar"
                    )
                    if keep:
                        self.small[name] = source.read()
                    else:
                        target = self.workdir / f"incoming-{next(self._counter)}.tar.gz"
                        if self.cache is not None and self.cache.wants(member.size, self.workdir):
                            self.streamed[name] = _compress_with_cache(source, target, self.level, self.cache)
                        else:
                            self.streamed[name] = _compress_stream(source, target, self.level)

    def resolve(self, name: str) -> str:
        name = posixpath.normpath(name.lstrip("/"))
        seen: set[str] = set()
        while name in self.links and name not in seen:
            seen.add(name)
            name = self.links[name]
        return name

    def bytes_of(self, name: str) -> bytes:
        name = self.resolve(name)
        if name in self.small:
            return self.small[name]
        if name in self.streamed:
            item = self.streamed[name]
            if item.compressed_input:
                raise ExportError(f"{name} is compressed; expected a JSON document")
            with gzip.open(item.gz_path, "rb") as handle:
                return handle.read()
        raise ExportError(f"the saved image has no {name}")

    def layer(self, name: str) -> _Streamed:
        name = self.resolve(name)
        if name in self.streamed:
            return self.streamed[name]
        if name in self.small:  # a tiny layer that was kept in memory
            target = self.workdir / f"incoming-{next(self._counter)}.tar.gz"
            self.streamed[name] = _compress_stream(io.BytesIO(self.small[name]), target, self.level)
            return self.streamed[name]
        raise ExportError(f"the saved image has no layer {name}")

    def config_and_layer_paths(self) -> tuple[str, list[str]]:
        """Locate the config and the layers: ``manifest.json`` first, else the OCI ``index.json``."""
        if "manifest.json" in self.small or "manifest.json" in self.links:
            entries = json.loads(self.bytes_of("manifest.json"))
            if not isinstance(entries, list) or len(entries) != 1:
                raise ExportError(f"expected exactly one image in the saved archive, got {len(entries)}")
            return str(entries[0]["Config"]), [str(path) for path in entries[0].get("Layers") or []]
        if "index.json" in self.small:
            manifest = self._oci_manifest(json.loads(self.bytes_of("index.json")))
            return (
                self._blob_path(manifest["config"]["digest"]),
                [self._blob_path(layer["digest"]) for layer in manifest.get("layers") or []],
            )
        raise ExportError("the saved image has neither manifest.json nor index.json")

    def _oci_manifest(self, index: dict[str, Any]) -> dict[str, Any]:
        for _ in range(4):  # index -> (nested index ->) manifest
            manifests = index.get("manifests") or []
            if len(manifests) != 1:
                raise ExportError(f"expected one manifest in the saved OCI index, got {len(manifests)}")
            document = json.loads(self.bytes_of(self._blob_path(manifests[0]["digest"])))
            if document.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in document:
                index = document
                continue
            return dict(document)
        raise ExportError("nested OCI indexes too deep in the saved image")

    @staticmethod
    def _blob_path(digest: str) -> str:
        algorithm, _, hexdigest = digest.partition(":")
        return f"blobs/{algorithm}/{hexdigest}"


def _iter_image_chunks(client: docker.DockerClient, image_id: str) -> Iterator[bytes]:
    try:
        yield from client.api.get_image(image_id, chunk_size=CHUNK)
    except docker.errors.ImageNotFound as exc:
        raise ExportError(f"image {image_id} does not exist in the engine") from exc
    except docker.errors.APIError as exc:
        if exc.status_code in (502, 503, 504):
            raise EngineUnavailable(f"docker engine answered {exc.status_code}: {exc.explanation}") from exc
        raise ExportError(f"docker save of {image_id} failed: {exc.explanation or exc}") from exc
    except ENGINE_UNAVAILABLE_ERRORS as exc:
        raise EngineUnavailable(f"lost the docker engine while saving {image_id}: {exc}") from exc


def export_image(
    client: docker.DockerClient,
    image_id: str,
    workdir: Path,
    *,
    compresslevel: int = GZIP_LEVEL,
    cache: LayerCache | None = None,
) -> ExportedImage:
    """Save ``image_id`` from the engine into ``workdir`` as an OCI image layout (blobs, ``index.json``).

    The returned :class:`ExportedImage` names the config, the gzip layers (files under
    ``workdir``) and the OCI manifest. The config's ``rootfs.diff_ids`` are checked against the
    uncompressed layers (:class:`ExportError` on a mismatch). Engine trouble raises
    :class:`EngineUnavailable`. With a ``cache``, layers compressed by an earlier export are taken
    from it (checked) instead of being compressed again.
    """
    return export_archive(
        _iter_image_chunks(client, image_id), workdir, compresslevel=compresslevel, name=image_id, cache=cache
    )


def export_archive(
    chunks: Iterable[bytes],
    workdir: Path,
    *,
    compresslevel: int = GZIP_LEVEL,
    name: str = "the image",
    cache: LayerCache | None = None,
) -> ExportedImage:
    """Like :func:`export_image`, for the bytes of a ``docker save`` tar (e.g. a file read in chunks)."""
    workdir = Path(workdir)
    blob_dir = workdir / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    archive = _SavedArchive(workdir, compresslevel, cache)
    try:
        archive.read(io.BufferedReader(_ChunkReader(chunks), CHUNK))
    except tarfile.TarError as exc:
        raise ExportError(f"docker save of {name} is not a readable tar: {exc}") from exc

    try:
        config_path, layer_paths = archive.config_and_layer_paths()
        config_bytes = archive.bytes_of(config_path)
        config = json.loads(config_bytes)
        if not isinstance(config, dict):
            raise TypeError("the image config is not a JSON object")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExportError(f"docker save of {name} has an unreadable manifest or config: {exc!r}") from exc
    config_digest = sha256_digest(config_bytes)
    expected_diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])

    layers: list[Blob] = []
    diff_ids: list[str] = []
    for index, path in enumerate(layer_paths):
        item = archive.layer(path)
        resolved = archive.resolve(path)
        if resolved.startswith("blobs/sha256/") and item.raw_digest != "sha256:" + resolved.rsplit("/", 1)[1]:
            raise ExportError(f"blob {resolved} in the saved image does not match its digest")
        diff_ids.append(item.diff_id)
        digest = item.gz_digest
        final = blob_dir / digest.split(":", 1)[1]
        if item.gz_path != final:
            if final.exists():
                item.gz_path.unlink()
            else:
                item.gz_path.replace(final)
            item.gz_path = final
        layers.append(Blob(final, digest, item.gz_size, OCI_LAYER_GZIP))
        if index < len(expected_diff_ids) and expected_diff_ids[index] != item.diff_id:
            raise ExportError(
                f"layer {index} ({path}) has diff_id {item.diff_id} but the image config says "
                f"{expected_diff_ids[index]}"
            )
    if diff_ids != expected_diff_ids:
        raise ExportError(
            f"the image has {len(diff_ids)} layers but its config lists {len(expected_diff_ids)} diff_ids"
        )
    for leftover in workdir.glob("incoming-*.tar.gz"):  # files that were not layers
        leftover.unlink()

    config_file = blob_dir / config_digest.split(":", 1)[1]
    config_file.write_bytes(config_bytes)
    config_descriptor = Descriptor(OCI_CONFIG, config_digest, len(config_bytes))
    manifest_bytes = build_manifest(config_descriptor, [layer.descriptor() for layer in layers])
    manifest_digest = sha256_digest(manifest_bytes)
    manifest_file = blob_dir / manifest_digest.split(":", 1)[1]
    manifest_file.write_bytes(manifest_bytes)

    exported = _exported(config_bytes, layers, manifest_bytes, config_file, manifest_file, diff_ids)
    write_oci_layout(workdir, exported)
    return exported


def _exported(
    config_bytes: bytes,
    layers: list[Blob],
    manifest_bytes: bytes,
    config_path: Path,
    manifest_path: Path,
    diff_ids: list[str],
) -> ExportedImage:
    config = json.loads(config_bytes)
    container_config = config.get("config") or {}
    return ExportedImage(
        config_bytes=config_bytes,
        config_digest=sha256_digest(config_bytes),
        layers=layers,
        manifest_bytes=manifest_bytes,
        manifest_digest=sha256_digest(manifest_bytes),
        architecture=str(config.get("architecture") or ""),
        os=str(config.get("os") or ""),
        variant=config.get("variant") or None,
        labels=dict(container_config.get("Labels") or {}),
        user=str(container_config.get("User") or ""),
        size=len(config_bytes) + sum(layer.size for layer in layers),
        created=config.get("created"),
        diff_ids=diff_ids,
        config_path=config_path,
        manifest_path=manifest_path,
        layout_dir=manifest_path.parents[2],  # <layout>/blobs/sha256/<hex>
    )


def oci_layout_index(image: ExportedImage) -> bytes:
    """The ``index.json`` of a layout holding only ``image``: its manifest with its platform."""
    return build_index([image.platform_manifest()])


def write_oci_layout(workdir: Path, image: ExportedImage) -> Path:
    """Write ``oci-layout`` and ``index.json`` next to ``workdir/blobs`` for ``image``; return ``workdir``.

    The bytes depend only on the image, so writing them again changes nothing. Each file is
    written to a temporary name and renamed, so a crash never leaves a half-written index.
    """
    workdir = Path(workdir)
    for name, content in ((OCI_LAYOUT_FILE, OCI_LAYOUT_BYTES), (OCI_INDEX_FILE, oci_layout_index(image))):
        target = workdir / name
        if target.is_file() and target.read_bytes() == content:
            continue
        partial = workdir / f".{name}.partial"
        partial.write_bytes(content)
        partial.replace(target)
    return workdir


def load_export(workdir: Path, manifest_digest: str) -> ExportedImage | None:
    """Re-read what :func:`export_image` wrote under ``workdir`` for ``manifest_digest``.

    Returns ``None`` when any of its blobs is missing or the manifest's bytes no longer match
    the digest, so a caller can tell "export gone" from a usable one. ``oci-layout`` and
    ``index.json`` are (re)written when missing or naming another manifest (an export made before
    the directory was a full OCI layout, or a crash between the blobs and the index), so the
    returned image's ``layout_dir`` can always be handed to a scanner.
    """
    blobs = Path(workdir) / "blobs" / "sha256"
    manifest_path = blobs / manifest_digest.split(":", 1)[1]
    if not manifest_path.is_file():
        return None
    manifest_bytes = manifest_path.read_bytes()
    if sha256_digest(manifest_bytes) != manifest_digest:
        return None
    manifest = json.loads(manifest_bytes)
    config_path = blobs / manifest["config"]["digest"].split(":", 1)[1]
    layers = [
        Blob(blobs / d["digest"].split(":", 1)[1], d["digest"], d["size"], d["mediaType"]) for d in manifest["layers"]
    ]
    if not config_path.is_file() or not all(layer.path.is_file() for layer in layers):
        return None
    config_bytes = config_path.read_bytes()
    diff_ids = list((json.loads(config_bytes).get("rootfs") or {}).get("diff_ids") or [])
    exported = _exported(config_bytes, layers, manifest_bytes, config_path, manifest_path, diff_ids)
    write_oci_layout(workdir, exported)
    return exported


def sha256_digest_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def remove_export(workdir: Path) -> None:
    """Delete what :func:`export_image` wrote under ``workdir``."""
    shutil.rmtree(Path(workdir) / "blobs", ignore_errors=True)
    for name in (OCI_LAYOUT_FILE, OCI_INDEX_FILE):
        (Path(workdir) / name).unlink(missing_ok=True)
