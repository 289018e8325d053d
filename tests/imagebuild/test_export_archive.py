"""export_archive on hand-made ``docker save`` tars (both layouts); the engine path is in test_engine."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from releases.imagebuild import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, ExportError, export_archive, load_export
from releases.imagebuild.export import SMALL_FILE_LIMIT, remove_export
from tests.imagebuild import chunks, saved_archive

BIG = os.urandom(SMALL_FILE_LIMIT * 3)  # a layer larger than the in-memory limit is streamed
LAYERS = [
    {"etc": None, "etc/os-release": b"ID=test\n"},
    {"srv": None, "srv/big.bin": BIG},
    {"srv/app.txt": b"hello\n"},
]
LABELS = {"org.opencontainers.image.version": "1.2.3"}


def _export(tmp_path: Path, name: str, **kwargs: object):  # type: ignore[no-untyped-def]
    data = saved_archive(LAYERS, labels=LABELS, user="app", **kwargs)  # type: ignore[arg-type]
    return export_archive(chunks(data), tmp_path / name)


def test_legacy_layout(tmp_path: Path) -> None:
    image = _export(tmp_path, "a")
    manifest = json.loads(image.manifest_bytes)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": image.config_digest,
        "size": len(image.config_bytes),
    }
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER_GZIP] * 3
    assert image.manifest_digest == "sha256:" + hashlib.sha256(image.manifest_bytes).hexdigest()
    config = json.loads(image.config_bytes)
    assert image.diff_ids == config["rootfs"]["diff_ids"]
    for blob, diff_id in zip(image.layers, image.diff_ids, strict=True):
        raw = blob.path.read_bytes()
        assert blob.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert blob.size == len(raw)
        assert "sha256:" + hashlib.sha256(gzip.decompress(raw)).hexdigest() == diff_id
        assert raw[:2] == b"\x1f\x8b" and raw[3] == 0 and raw[4:8] == b"\0\0\0\0"  # no FNAME, mtime 0
    assert (image.architecture, image.os, image.variant) == ("amd64", "linux", None)
    assert image.labels == LABELS
    assert image.user == "app"
    assert image.size == len(image.config_bytes) + sum(blob.size for blob in image.layers)
    assert image.created == "2024-05-06T07:08:09.123456789Z"
    assert image.created_at is not None and image.created_at.microsecond == 123456
    assert image.platform_manifest().platform == "linux/amd64"
    assert image.manifest_path is not None and image.manifest_path.read_bytes() == image.manifest_bytes
    assert not list((tmp_path / "a").glob("incoming-*"))


def test_deterministic_and_layout_independent(tmp_path: Path) -> None:
    legacy = _export(tmp_path, "legacy")
    again = _export(tmp_path, "again")
    oci = _export(tmp_path, "oci", layout="oci")
    oci_gzip = _export(tmp_path, "oci-gz", layout="oci", gzip_layers=True)
    assert again.manifest_digest == legacy.manifest_digest
    assert oci.manifest_digest == legacy.manifest_digest
    assert oci_gzip.manifest_digest == legacy.manifest_digest
    assert [blob.digest for blob in oci_gzip.layers] == [blob.digest for blob in legacy.layers]


def test_symlinked_duplicate_layer(tmp_path: Path) -> None:
    layers = [{"a.txt": b"same\n"}, {"b.txt": b"other\n"}, {"a.txt": b"same\n"}]
    data = saved_archive(layers, symlink_duplicate=True)
    image = export_archive(chunks(data), tmp_path / "x")
    assert len(image.layers) == 3
    assert image.layers[0].digest == image.layers[2].digest
    assert image.layers[0].path.exists()


def test_diff_id_mismatch(tmp_path: Path) -> None:
    data = saved_archive(LAYERS, wrong_diff_id=True)
    with pytest.raises(ExportError, match="layer 2 .* has diff_id sha256:[0-9a-f]{64} but the image config says"):
        export_archive(chunks(data), tmp_path / "x")


def test_not_a_tar(tmp_path: Path) -> None:
    with pytest.raises(ExportError):
        export_archive([b"this is not a tar archive" * 100], tmp_path / "x")


def test_export_is_an_oci_image_layout(tmp_path: Path) -> None:
    image = _export(tmp_path, "a")
    layout = tmp_path / "a"
    assert image.layout_dir == layout
    assert json.loads((layout / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_bytes())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": image.manifest_digest,
            "size": len(image.manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
        }
    ]
    # Every blob the manifest names is under blobs/sha256, named by its digest.
    manifest = json.loads((layout / "blobs" / "sha256" / image.manifest_digest.split(":")[1]).read_bytes())
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = (layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == descriptor["digest"]
        assert len(blob) == descriptor["size"]
    assert sorted(path.name for path in layout.iterdir()) == ["blobs", "index.json", "oci-layout"]


def test_layout_files_are_deterministic(tmp_path: Path) -> None:
    _export(tmp_path, "a")
    _export(tmp_path, "b", layout="oci")
    for name in ("oci-layout", "index.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_load_export_completes_an_export_made_before_the_layout(tmp_path: Path) -> None:
    # Given an export recorded before a crash by a version that wrote only blobs/
    image = _export(tmp_path, "a")
    index_bytes = (tmp_path / "a" / "index.json").read_bytes()
    (tmp_path / "a" / "index.json").unlink()
    (tmp_path / "a" / "oci-layout").unlink()
    # When the pipeline resumes from it
    loaded = load_export(tmp_path / "a", image.manifest_digest)
    # Then it is the same image, and the directory is a full layout again
    assert loaded is not None
    assert loaded.manifest_bytes == image.manifest_bytes
    assert [blob.digest for blob in loaded.layers] == [blob.digest for blob in image.layers]
    assert loaded.layout_dir == tmp_path / "a"
    assert (tmp_path / "a" / "index.json").read_bytes() == index_bytes
    assert (tmp_path / "a" / "oci-layout").is_file()
    assert load_export(tmp_path / "a", "sha256:" + "0" * 64) is None


def test_remove_export_removes_the_layout(tmp_path: Path) -> None:
    _export(tmp_path, "a")
    remove_export(tmp_path / "a")
    assert list((tmp_path / "a").iterdir()) == []
