"""Compressed layers kept between exports, by the digest of their uncompressed tar (``diff_id``).

Every release exports each platform image again and gzips every layer again, although most of them
(the base image's, the dependencies') did not change since the previous release. Compression is
deterministic, so a layer with the same ``diff_id`` and level always gives the same blob: this
cache keeps that blob on the worker's disk and the next export links it instead of compressing it.

What is taken from the cache is checked before it is used: the file is decompressed and must hash
to the ``diff_id`` asked for (a tenth of what compressing costs), so a damaged or foreign file is
dropped and the layer compressed again; nothing unchecked is ever pushed. Files are written under
a temporary name and renamed into place, so a reader never sees half a file. Small layers are
not kept (they cost nothing to compress); past ``max_bytes`` the least recently used files go.

A layer looked up is first written uncompressed (its ``diff_id`` is known only at its end), so the
cache is used only where the disk has room for that and ``min_free_bytes`` more: on a nearly full
build disk the export compresses as it reads, as it does without a cache, and keeps nothing.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MIN_LAYER_BYTES = 512 * 1024  # layers whose uncompressed tar is smaller are compressed every time
MIN_FREE_BYTES = 1024**3  # the cache steps aside when its disk would have less than this left
_READ = 1024 * 1024
STALE_PARTIAL_SECONDS = 3600


@dataclass(frozen=True)
class CachedLayer:
    """A blob taken from the cache, checked: its digest and size."""

    digest: str
    size: int


class LayerCache:
    """Gzip'd layers under ``root``, one file per (level, diff_id); see the module's docstring."""

    def __init__(
        self, root: Path, max_bytes: int, min_bytes: int = MIN_LAYER_BYTES, min_free_bytes: int = MIN_FREE_BYTES
    ):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self.min_free_bytes = min_free_bytes

    def wants(self, size: int, workdir: Path) -> bool:
        """Whether a layer of ``size`` bytes is worth looking up and keeping, and the disks of
        ``workdir`` (where it is written uncompressed, then compressed) and of the cache have room."""
        if size < self.min_bytes or self.max_bytes <= 0:
            return False
        return all(_free_bytes(path) >= 2 * size + self.min_free_bytes for path in (workdir, self.root))

    def _path(self, diff_id: str, level: int) -> Path:
        algorithm, _, hexdigest = diff_id.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ValueError(f"not a sha256 diff_id: {diff_id!r}")
        return self.root / f"gzip-{level}" / hexdigest

    def fetch(self, diff_id: str, level: int, target: Path) -> CachedLayer | None:
        """Put the cached blob of ``diff_id`` at ``target`` (a hard link where it can) and return its
        digest and size, once its content is checked; ``None`` when there is none or it is damaged
        (then ``target`` does not exist and the damaged file is gone)."""
        cached = self._path(diff_id, level)
        try:
            _link_or_copy(cached, target)
        except FileNotFoundError:
            return None
        checked = _checked(target, diff_id)
        if checked is None:
            logger.warning("layer cache: %s did not hold %s; compressing the layer again", cached, diff_id)
            target.unlink(missing_ok=True)
            cached.unlink(missing_ok=True)
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(cached)  # recently used: the last to be pruned
        logger.info("layer cache: took %s (%d bytes) for %s", checked.digest, checked.size, diff_id)
        return checked

    def keep(self, diff_id: str, level: int, blob: Path) -> None:
        """Keep a copy of ``blob`` (the gzip of ``diff_id`` at ``level``), then prune to ``max_bytes``.
        A cache that cannot be written is only logged: the export does not depend on it."""
        cached = self._path(diff_id, level)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(blob, partial)
            partial.replace(cached)
        except OSError as error:
            partial.unlink(missing_ok=True)
            logger.warning("layer cache: could not keep %s in %s: %s", diff_id, self.root, error)
            return
        self.prune()

    def prune(self) -> None:
        """Remove the least recently used files until the cache holds at most ``max_bytes`` (two
        workers pruning at once only remove a file twice: unlinking is idempotent here)."""
        entries = []
        for directory in self.root.glob("gzip-*"):
            for entry in os.scandir(directory):
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                if entry.name.startswith("."):  # being written, or left by a worker that died writing it
                    if stat.st_mtime < time.time() - STALE_PARTIAL_SECONDS:
                        Path(entry.path).unlink(missing_ok=True)
                    continue
                entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


def _free_bytes(path: Path) -> int:
    """The bytes free to us on the disk of ``path`` (or of its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            stat = os.statvfs(candidate)
        except FileNotFoundError:
            continue
        return stat.f_bavail * stat.f_frsize
    return 0


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:  # another file system, or links not allowed: a copy does
        shutil.copyfile(source, target)


def _checked(path: Path, diff_id: str) -> CachedLayer | None:
    """The digest and size of the gzip file at ``path`` when it decompresses to ``diff_id``."""
    compressed, plain = hashlib.sha256(), hashlib.sha256()
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(_READ):
                compressed.update(chunk)
        with gzip.open(path, "rb") as layer:
            while chunk := layer.read(_READ):
                plain.update(chunk)
        size = path.stat().st_size
    except (OSError, EOFError, zlib.error):
        return None
    if "sha256:" + plain.hexdigest() != diff_id:
        return None
    return CachedLayer("sha256:" + compressed.hexdigest(), size)
