"""The layer cache: an export takes a layer an earlier export compressed, checked, and the result is
byte for byte the export without the cache."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

from releases.imagebuild import export_archive
from releases.imagebuild.export import GZIP_LEVEL
from releases.imagebuild.layer_cache import LayerCache
from tests.imagebuild import chunks, saved_archive

BIG = os.urandom(300 * 1024)
OTHER = os.urandom(300 * 1024)
SMALL_LAYER = {"etc": None, "etc/os-release": b"ID=test\n"}


def _layers(big: bytes = BIG) -> list:
    return [SMALL_LAYER, {"srv": None, "srv/big.bin": big}, {"srv/app.txt": b"hello\n"}]


def _cache(tmp_path: Path, max_bytes: int = 64 * 1024 * 1024) -> LayerCache:
    return LayerCache(tmp_path / "cache", max_bytes=max_bytes, min_bytes=256 * 1024)


def _export(tmp_path: Path, name: str, cache: LayerCache | None, **kwargs):  # type: ignore[no-untyped-def]
    return export_archive(chunks(saved_archive(_layers(**kwargs))), tmp_path / name, cache=cache)


def _cached_files(cache: LayerCache) -> list[Path]:
    return sorted(path for path in cache.root.glob("gzip-*/*") if not path.name.startswith("."))


def test_a_second_export_links_the_kept_layer_and_equals_the_export_without_cache(tmp_path: Path) -> None:
    plain = _export(tmp_path, "plain", None)
    cache = _cache(tmp_path)
    first = _export(tmp_path, "first", cache)
    (kept,) = _cached_files(cache)  # only the large layer is worth keeping
    assert kept.name == plain.diff_ids[1].split(":")[1]
    assert kept.parent.name == f"gzip-{GZIP_LEVEL}"
    second = _export(tmp_path, "second", cache)
    assert first.manifest_digest == second.manifest_digest == plain.manifest_digest
    assert [blob.digest for blob in second.layers] == [blob.digest for blob in plain.layers]
    assert os.stat(second.layers[1].path).st_ino == os.stat(kept).st_ino  # taken, not compressed again
    assert os.stat(second.layers[0].path).st_ino != os.stat(first.layers[0].path).st_ino
    assert not list((tmp_path / "second").rglob("*.plain"))
    assert not list((tmp_path / "second").glob("incoming-*"))


def test_a_layer_saved_compressed_is_kept_by_its_diff_id(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    plain = _export(tmp_path, "plain", None)
    data = saved_archive(_layers(), layout="oci", gzip_layers=True)
    first = export_archive(chunks(data), tmp_path / "first", cache=cache)
    second = export_archive(chunks(data), tmp_path / "second", cache=cache)
    assert first.manifest_digest == second.manifest_digest == plain.manifest_digest
    assert len(_cached_files(cache)) == 1


def test_a_damaged_entry_is_dropped_and_the_layer_compressed_again(tmp_path: Path) -> None:
    plain = _export(tmp_path, "plain", None)
    for number, damage in enumerate((b"not gzip at all", gzip.compress(b"another layer", mtime=0), b"")):
        cache = _cache(tmp_path / f"case-{number}")
        _export(tmp_path / f"case-{number}", "first", cache)
        (kept,) = _cached_files(cache)
        kept.unlink()
        kept.write_bytes(damage)  # a new file: the first export's blob is left alone
        again = _export(tmp_path / f"case-{number}", "again", cache)
        assert again.manifest_digest == plain.manifest_digest
        blob = again.layers[1].path.read_bytes()
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == again.layers[1].digest == plain.layers[1].digest
        (rekept,) = _cached_files(cache)  # compressed again and kept again, right this time
        assert gzip.decompress(rekept.read_bytes()) == gzip.decompress(plain.layers[1].path.read_bytes())


def test_the_least_recently_used_go_past_the_limit(tmp_path: Path) -> None:
    one = _export(tmp_path, "one", None)
    size = one.layers[1].size
    cache = _cache(tmp_path, max_bytes=size + size // 2)  # room for one large layer, not two
    _export(tmp_path, "a", cache)
    _export(tmp_path, "b", cache, big=OTHER)
    (kept,) = _cached_files(cache)
    assert gzip.decompress(kept.read_bytes()) != gzip.decompress(one.layers[1].path.read_bytes())
    stale = kept.with_name(".left-by-a-dead-worker")
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    cache.prune()
    assert not stale.exists()


def test_a_disk_without_room_to_spare_keeps_nothing(tmp_path: Path) -> None:
    plain = _export(tmp_path, "plain", None)
    crowded = LayerCache(tmp_path / "cache-crowded", max_bytes=1024**3, min_bytes=0, min_free_bytes=2**62)
    assert _export(tmp_path, "crowded", crowded).manifest_digest == plain.manifest_digest
    assert not crowded.root.exists()
    assert not list((tmp_path / "crowded").rglob("*.plain"))


def test_off_and_small_layers_keep_nothing(tmp_path: Path) -> None:
    off = LayerCache(tmp_path / "cache-off", max_bytes=0, min_bytes=0)
    _export(tmp_path, "off", off)
    assert not off.root.exists()
    small_only = LayerCache(tmp_path / "cache-small", max_bytes=1024**3, min_bytes=10 * 1024 * 1024)
    _export(tmp_path, "small", small_only)
    assert not small_only.root.exists()


def test_the_pipeline_cache_follows_the_settings(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from releases.pipelines.image_builds import layer_cache

    settings.BUILD_WORKDIR = tmp_path / "builds"
    settings.LAYER_CACHE_DIR = None
    settings.LAYER_CACHE_MAX_BYTES = 1024
    cache = layer_cache()
    assert cache is not None and cache.root == tmp_path / "builds" / "layer-cache" and cache.max_bytes == 1024
    settings.LAYER_CACHE_DIR = tmp_path / "elsewhere"
    assert layer_cache().root == tmp_path / "elsewhere"  # type: ignore[union-attr]
    settings.LAYER_CACHE_MAX_BYTES = 0
    assert layer_cache() is None
