"""Package a chart directory into a reproducible ``.tgz`` in Helm's layout.

Same source files -> same bytes -> same sha256, wherever and whenever it runs (with the same
zlib): entries are sorted, every entry has mtime 0, uid/gid 0, empty user/group names and
mode 0644 (0755 when the source file is executable by its owner); only regular files are
stored (no directory entries, like ``helm package``); gzip carries mtime 0 and no file name.
The layout is Helm's: ``<name>/Chart.yaml``, ``<name>/values.yaml``, ``<name>/templates/...``,
where ``<name>`` is Chart.yaml's name; files matched by ``.helmignore`` are left out.

Unlike ``helm package``, symbolic links are never followed: a chart holding any (or a FIFO, a
socket...) is refused before a byte of it is read (see :mod:`releases.charts.confine`).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from releases.charts.confine import chart_path_problems
from releases.charts.helmignore import IgnoreRules, chart_files
from releases.charts.yamlio import load_yaml
from releases.oci.digest import sha256_digest

FIXED_MTIME = 0
GZIP_LEVEL = 9


class ChartPackageError(ValueError):
    """The directory cannot be packaged (no Chart.yaml, no name/version, symbolic links...)."""


@dataclass(frozen=True)
class PackagedChart:
    """A chart archive: ``digest`` is ``sha256:<hex>`` of ``data``."""

    name: str
    version: str
    data: bytes
    digest: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def hex_digest(self) -> str:
        """The bare sha256 hex, as Helm's index.yaml ``digest`` field wants it."""
        return self.digest.removeprefix("sha256:")

    @property
    def filename(self) -> str:
        """``<name>-<version>.tgz``, the name ``helm package`` gives the archive."""
        return f"{self.name}-{self.version}.tgz"


def _chart_identity(chart_dir: Path) -> tuple[str, str]:
    chart_file = chart_dir / "Chart.yaml"
    try:
        metadata = load_yaml(chart_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChartPackageError(f"{chart_dir}: no Chart.yaml; this is not a chart directory") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ChartPackageError(f"{chart_file}: cannot be read as YAML ({error}); run load_chart first") from None
    if not isinstance(metadata, dict):
        raise ChartPackageError(f"{chart_file}: is not a YAML mapping; run load_chart first")
    name, version = metadata.get("name"), metadata.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        raise ChartPackageError(f"{chart_file}: name and version must be non-empty strings; run load_chart first")
    if "/" in name or name in (".", ".."):
        raise ChartPackageError(f"{chart_file}: name {name!r} cannot be used as the archive's top directory")
    return name, version


def _tar_info(arcname: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def package_chart(chart_dir: Path) -> PackagedChart:
    """Build the chart archive of ``chart_dir`` in memory (see the module docstring).

    Raises :class:`ChartPackageError` when the chart holds symbolic links or special files (all
    of them listed), or Chart.yaml is missing or lacks a name/version, and
    :class:`~releases.charts.helmignore.IgnoreSyntaxError` for a .helmignore Helm would refuse.
    """
    chart_dir = Path(chart_dir)
    problems = chart_path_problems(chart_dir) if chart_dir.is_dir() else []
    if problems:
        raise ChartPackageError(f"{chart_dir}: cannot be packaged: " + "; ".join(problems))
    name, version = _chart_identity(chart_dir)
    files = chart_files(chart_dir, IgnoreRules.for_chart(chart_dir))
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=FIXED_MTIME, compresslevel=GZIP_LEVEL) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relpath in files:
            source = chart_dir / relpath
            content = source.read_bytes()
            executable = bool(os.stat(source).st_mode & stat.S_IXUSR)
            tar.addfile(_tar_info(f"{name}/{relpath}", len(content), executable), io.BytesIO(content))
    data = raw.getvalue()
    return PackagedChart(name=name, version=version, data=data, digest=sha256_digest(data))
