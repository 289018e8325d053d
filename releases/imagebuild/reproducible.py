"""Make an exported image reproducible: every timestamp after the commit is clamped to the commit time.

Two builds of the same commit differ only in when they ran: the mtimes of the files the steps wrote
(and of the directories they touched), the config's ``created`` and its history. BuildKit does
this itself with ``SOURCE_DATE_EPOCH`` from 0.11 on; the engines here carry 0.8, so we do it at
export, as that option does: each layer is rewritten with every mtime later than ``epoch`` set to
``epoch`` (older ones, the base image's, are kept), access and change times dropped, and the
config's ``created`` set to ``epoch`` (history entries and the inline cache's ``createdAt``
clamped), ``rootfs.diff_ids`` following the rewritten layers. Layers are streamed (never held in
memory) and gzip'd deterministically, so the same input gives the same manifest digest.

What stays different is what the build itself makes different (a RUN writing ``date`` or random
bytes): :func:`compare_exports` says which layer or config field differs.
"""

from __future__ import annotations

import base64
import gzip
import json
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from releases.imagebuild.errors import ExportError
from releases.imagebuild.export import (
    GZIP_LEVEL,
    OCI_LAYER_GZIP,
    Blob,
    ExportedImage,
    HashingWriter,
    _exported,
    write_oci_layout,
)
from releases.oci.digest import sha256_digest
from releases.oci.manifest import Descriptor, build_manifest
from releases.oci.media_types import OCI_CONFIG

_DROPPED_PAX = ("atime", "ctime", "mtime")
INLINE_CACHE_KEY = "moby.buildkit.cache.v0"


def epoch_text(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clamp_layer(source: Path, target: Path, epoch: int, level: int) -> tuple[str, str, int]:
    """Rewrite the gzip'd layer at ``source`` into ``target``; return (diff_id, digest, size)."""
    with target.open("wb") as out:
        compressed = HashingWriter(out)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=level, mtime=0) as gz:
            plain = HashingWriter(gz)
            with (
                gzip.open(source, "rb") as raw,
                tarfile.open(fileobj=raw, mode="r|") as layer,
                tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as rewritten,
            ):
                for member in layer:
                    member.mtime = min(int(member.mtime), epoch)
                    for key in _DROPPED_PAX:
                        member.pax_headers.pop(key, None)
                    content = layer.extractfile(member) if member.isreg() else None
                    rewritten.addfile(member, content)
    return "sha256:" + plain.hash.hexdigest(), "sha256:" + compressed.hash.hexdigest(), compressed.size


def _needs_clamp(source: Path, epoch: int) -> bool:
    """Whether a layer has a timestamp to clamp (a base image's layers usually have none: they are
    kept byte for byte, which is deterministic already and spares recompressing them).

    A timestamp equal to ``epoch`` counts: a step run within the commit's second writes it, the same
    step rebuilt later writes a later one, and both must come out of here as the same bytes."""
    with gzip.open(source, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as layer:
        for member in layer:
            if member.mtime >= epoch or any(key in member.pax_headers for key in _DROPPED_PAX):
                return True
    return False


def _clamp_config(config_bytes: bytes, diff_ids: list[str], epoch: int) -> bytes:
    config = json.loads(config_bytes)
    config["created"] = epoch_text(epoch)
    for entry in config.get("history") or []:
        created = entry.get("created")
        if created and _parse_time(created) > epoch:
            entry["created"] = epoch_text(epoch)
    config.setdefault("rootfs", {})["diff_ids"] = diff_ids
    if isinstance(config.get(INLINE_CACHE_KEY), str):
        config[INLINE_CACHE_KEY] = _clamp_inline_cache(config[INLINE_CACHE_KEY], epoch)
    return json.dumps(config, separators=(",", ":"), sort_keys=True).encode()


def _clamp_inline_cache(encoded: str, epoch: int) -> str:
    """BuildKit's inline cache (base64 JSON) records when each layer was made: clamp those too."""
    try:
        records = json.loads(base64.b64decode(encoded))
    except ValueError:
        return encoded

    def clamp(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: epoch_text(epoch) if key == "createdAt" and _parse_time(str(item)) > epoch else clamp(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [clamp(item) for item in value]
        return value

    return base64.b64encode(json.dumps(clamp(records), separators=(",", ":"), ensure_ascii=False).encode()).decode()


def _parse_time(text: str) -> float:
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(char for char in rest if char.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(text).timestamp()


def normalise_export(image: ExportedImage, epoch: int, *, compresslevel: int = GZIP_LEVEL) -> ExportedImage:
    """Rewrite ``image`` (in its OCI layout) with timestamps clamped to ``epoch``; return the new image.

    The new blobs go into the same layout (``index.json`` then names the new manifest); blobs of the
    old image that nothing uses any more are removed. Raises :class:`ExportError` when a layer is
    not a readable tar.
    """
    if image.layout_dir is None:
        raise ExportError("the image has no OCI layout on disk to normalise")
    blobs = image.layout_dir / "blobs" / "sha256"
    layers: list[Blob] = []
    diff_ids: list[str] = []
    for number, layer in enumerate(image.layers):
        partial = blobs / f".normalising-{number}"
        try:
            if not _needs_clamp(layer.path, epoch):
                layers.append(layer)
                diff_ids.append(image.diff_ids[number])
                continue
            diff_id, digest, size = _clamp_layer(layer.path, partial, epoch, compresslevel)
        except (tarfile.TarError, OSError, EOFError) as exc:
            partial.unlink(missing_ok=True)
            raise ExportError(f"layer {number} ({layer.digest}) cannot be normalised: {exc}") from exc
        final = blobs / digest.split(":", 1)[1]
        partial.replace(final)
        layers.append(Blob(final, digest, size, OCI_LAYER_GZIP))
        diff_ids.append(diff_id)
    config_bytes = _clamp_config(image.config_bytes, diff_ids, epoch)
    config_digest = sha256_digest(config_bytes)
    config_path = blobs / config_digest.split(":", 1)[1]
    config_path.write_bytes(config_bytes)
    manifest_bytes = build_manifest(
        Descriptor(OCI_CONFIG, config_digest, len(config_bytes)), [layer.descriptor() for layer in layers]
    )
    manifest_path = blobs / sha256_digest(manifest_bytes).split(":", 1)[1]
    manifest_path.write_bytes(manifest_bytes)
    normalised = _exported(config_bytes, layers, manifest_bytes, config_path, manifest_path, diff_ids)
    write_oci_layout(image.layout_dir, normalised)
    kept = {path.name for path in (config_path, manifest_path, *(layer.path for layer in layers))}
    old = [image.config_path, image.manifest_path, *(layer.path for layer in image.layers)]
    for path in old:
        if path is not None and path.name not in kept:
            path.unlink(missing_ok=True)
    return normalised


@dataclass(frozen=True)
class Comparison:
    """Whether a rebuilt platform image is the published one, and if not, where it differs."""

    platform: str
    published: str
    rebuilt: str
    differences: tuple[str, ...]

    @property
    def reproduces(self) -> bool:
        return self.published == self.rebuilt

    def __str__(self) -> str:
        if self.reproduces:
            return f"{self.platform}: reproduces ({self.published})"
        return f"{self.platform}: differs (published {self.published}, rebuilt {self.rebuilt}): " + "; ".join(
            self.differences
        )


def compare_exports(platform: str, published: ExportedImage, rebuilt: ExportedImage) -> Comparison:
    """Compare two exports of one platform: manifest digests, then which layers and config fields differ."""
    differences: list[str] = []
    if len(published.diff_ids) != len(rebuilt.diff_ids):
        differences.append(f"{len(published.diff_ids)} layers published, {len(rebuilt.diff_ids)} rebuilt")
    for number, (left, right) in enumerate(zip(published.diff_ids, rebuilt.diff_ids, strict=False)):
        if left != right:
            differences.append(f"layer {number} differs ({left} / {right})")
    left_config, right_config = json.loads(published.config_bytes), json.loads(rebuilt.config_bytes)
    for key in sorted(set(left_config) | set(right_config)):
        if key != "rootfs" and left_config.get(key) != right_config.get(key):
            differences.append(f"config {key} differs")
    return Comparison(platform, published.manifest_digest, rebuilt.manifest_digest, tuple(differences))


def compare_with_manifest(
    platform: str, published_digest: str, manifest_bytes: bytes, rebuilt: ExportedImage
) -> Comparison:
    """Compare a rebuilt export with the published platform manifest (as the registry serves it):
    layers are compressed the same way on both sides, so a layer differs exactly when its digest does."""
    manifest = json.loads(manifest_bytes)
    published_layers = [layer["digest"] for layer in manifest.get("layers") or []]
    rebuilt_layers = [layer.digest for layer in rebuilt.layers]
    differences: list[str] = []
    if len(published_layers) != len(rebuilt_layers):
        differences.append(f"{len(published_layers)} layers published, {len(rebuilt_layers)} rebuilt")
    for number, (left, right) in enumerate(zip(published_layers, rebuilt_layers, strict=False)):
        if left != right:
            differences.append(f"layer {number} differs ({left} / {right})")
    # The config lists the layers' diff_ids: it differs with any layer, so it is named only alone.
    if not differences and (manifest.get("config") or {}).get("digest") != rebuilt.config_digest:
        differences.append("config differs")
    return Comparison(platform, published_digest, rebuilt.manifest_digest, tuple(differences))
