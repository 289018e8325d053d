"""Tests of releases.imagebuild. Helpers shared by the test modules live here.

``saved_archive`` writes ``docker save`` tars by hand (legacy Docker 20.10 layout and the OCI
layout of Docker 25+), so the export and scan code can be tested on exact inputs without an engine;
the engine tests use the real dockerd.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

# path -> content; None makes a directory. Paths like "app/.wh.x" are written as-is (whiteouts).
LayerSpec = Mapping[str, bytes | None]


def layer_tar(files: LayerSpec) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.mtime = 0
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(
    diff_ids: list[str],
    *,
    user: str = "",
    labels: Mapping[str, str] | None = None,
    architecture: str = "amd64",
    variant: str | None = None,
) -> bytes:
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "created": "2024-05-06T07:08:09.123456789Z",
        "config": {"User": user, "Labels": dict(labels or {}) or None},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if variant:
        config["variant"] = variant
    return json.dumps(config).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def saved_archive(
    layers: list[LayerSpec],
    *,
    layout: str = "legacy",
    gzip_layers: bool = False,
    wrong_diff_id: bool = False,
    symlink_duplicate: bool = False,
    **config_kwargs: Any,
) -> bytes:
    """A ``docker save`` tar of one image with ``layers``.

    ``layout="legacy"``: manifest.json, <config>.json, <id>/layer.tar (Docker 20.10).
    ``layout="oci"``: index.json, oci-layout and blobs/sha256 only (no manifest.json).
    """
    tars = [layer_tar(files) for files in layers]
    diff_ids = [_digest(data) for data in tars]
    config_diff_ids = list(diff_ids)
    if wrong_diff_id:
        config_diff_ids[-1] = "sha256:" + "0" * 64
    config = image_config(config_diff_ids, **config_kwargs)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if layout == "legacy":
            paths = []
            for index, data in enumerate(tars):
                layer_id = hashlib.sha256(f"layer-{index}".encode()).hexdigest()
                path = f"{layer_id}/layer.tar"
                if symlink_duplicate and index > 0 and data == tars[0]:
                    link = tarfile.TarInfo(path)
                    link.type = tarfile.SYMTYPE
                    link.linkname = f"../{paths[0].split('/')[0]}/layer.tar"
                    tar.addfile(link)
                else:
                    _add(tar, path, data)
                paths.append(path)
            config_name = _digest(config).split(":")[1] + ".json"
            _add(tar, config_name, config)
            manifest = [{"Config": config_name, "RepoTags": None, "Layers": paths}]
            _add(tar, "manifest.json", json.dumps(manifest).encode())
        else:
            descriptors = []
            for data in tars:
                blob = gzip.compress(data, mtime=0) if gzip_layers else data
                media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
                descriptors.append({"mediaType": media, "digest": _digest(blob), "size": len(blob)})
                _add(tar, "blobs/sha256/" + _digest(blob).split(":")[1], blob)
            _add(tar, "blobs/sha256/" + _digest(config).split(":")[1], config)
            manifest_doc = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": _digest(config),
                        "size": len(config),
                    },
                    "layers": descriptors,
                }
            ).encode()
            _add(tar, "blobs/sha256/" + _digest(manifest_doc).split(":")[1], manifest_doc)
            index = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": _digest(manifest_doc),
                        "size": len(manifest_doc),
                    }
                ],
            }
            _add(tar, "index.json", json.dumps(index).encode())
            _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    return buffer.getvalue()


def chunks(data: bytes, size: int = 7777) -> list[bytes]:
    """Split like an HTTP stream does (odd sizes, to cross tar block boundaries)."""
    return [data[offset : offset + size] for offset in range(0, len(data), size)]
