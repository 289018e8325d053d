"""package_chart: reproducible archives in Helm's layout, accepted by real helm."""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
from pathlib import Path

import pytest

from releases.charts import ChartPackageError, package_chart, render_chart, validate_manifests
from tests.charts.conftest import EXAMPLE_CHART, copy_chart, run_helm

EXPECTED_NAMES = [
    "threek8s/.helmignore",
    "threek8s/Chart.yaml",
    "threek8s/templates/_helpers.tpl",
    "threek8s/templates/backend-deployment.yaml",
    "threek8s/templates/backend-service.yaml",
    "threek8s/templates/frontend-deployment.yaml",
    "threek8s/templates/frontend-service.yaml",
    "threek8s/values.schema.json",
    "threek8s/values.yaml",
]


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return archive.getmembers()


def test_same_source_twice_same_bytes() -> None:
    first, second = package_chart(EXAMPLE_CHART), package_chart(EXAMPLE_CHART)
    assert first.data == second.data
    assert first.digest == second.digest
    assert first.digest.startswith("sha256:") and len(first.hex_digest) == 64
    assert (first.name, first.version, first.filename) == ("threek8s", "1.0.0", "threek8s-1.0.0.tgz")
    assert first.size == len(first.data)


def test_copy_with_other_mtimes_owners_and_modes_same_digest(tmp_path: Path) -> None:
    original = package_chart(EXAMPLE_CHART)
    copy = copy_chart(tmp_path / "elsewhere" / "renamed-dir")
    generator = random.Random(7)
    for path in sorted(copy.rglob("*")):
        stamp = generator.randint(1_000_000_000, 1_900_000_000)
        os.utime(path, (stamp, stamp))
        if path.is_file():
            path.chmod(0o600 if generator.random() < 0.5 else 0o664)
            if os.geteuid() == 0:
                os.chown(path, 1234, 5678)
    assert package_chart(copy).digest == original.digest


def test_archive_layout_and_normalised_headers() -> None:
    packaged = package_chart(EXAMPLE_CHART)
    infos = members(packaged.data)
    assert [info.name for info in infos] == EXPECTED_NAMES
    for info in infos:
        assert info.isfile()
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode) == (0, 0, 0, "", "", 0o644)
    # gzip header: no file name flag, mtime 0.
    assert packaged.data[:3] == b"\x1f\x8b\x08"
    assert packaged.data[3] & 0x08 == 0
    assert packaged.data[4:8] == b"\x00\x00\x00\x00"
    assert gzip.decompress(packaged.data)  # well-formed


def test_executable_files_keep_0755_and_content_changes_digest(example_chart: Path) -> None:
    before = package_chart(example_chart)
    script = example_chart / "files" / "entry.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o700)
    packaged = package_chart(example_chart)
    modes = {info.name: info.mode for info in members(packaged.data)}
    assert modes["threek8s/files/entry.sh"] == 0o755
    assert packaged.digest != before.digest
    (example_chart / "values.yaml").write_text((example_chart / "values.yaml").read_text() + "# edited\n")
    assert package_chart(example_chart).digest != packaged.digest


def test_helmignore_is_honoured(example_chart: Path) -> None:
    (example_chart / "notes.bak").write_text("x")
    (example_chart / "ci").mkdir()
    (example_chart / "ci" / "test-values.yaml").write_text("a: 1\n")
    (example_chart / "templates" / ".scratch.yaml").write_text("x")
    (example_chart / ".git").mkdir()
    (example_chart / ".git" / "HEAD").write_text("ref")
    (example_chart / "README.md").write_text("# threek8s\n")
    names = [info.name for info in members(package_chart(example_chart).data)]
    assert names == sorted([*EXPECTED_NAMES, "threek8s/README.md"])


def test_same_files_as_helm_package(
    helm_bin: str, helm_home: dict[str, str], example_chart: Path, tmp_path: Path
) -> None:
    (example_chart / "notes.bak").write_text("x")
    (example_chart / "ci").mkdir()
    (example_chart / "ci" / "x.yaml").write_text("a: 1\n")
    (example_chart / "templates" / ".scratch.yaml").write_text("x")
    (example_chart / "docs").mkdir()
    (example_chart / "docs" / "usage.md").write_text("usage\n")
    out = tmp_path / "helm-out"
    run_helm(helm_bin, helm_home, "package", str(example_chart), "--destination", str(out))
    helm_names = sorted(info.name for info in members((out / "threek8s-1.0.0.tgz").read_bytes()))
    ours = sorted(info.name for info in members(package_chart(example_chart).data))
    assert ours == helm_names


def test_helm_accepts_the_archive(helm_bin: str, helm_home: dict[str, str], tmp_path: Path) -> None:
    packaged = package_chart(EXAMPLE_CHART)
    archive = tmp_path / packaged.filename
    archive.write_bytes(packaged.data)
    shown = run_helm(helm_bin, helm_home, "show", "chart", str(archive)).stdout
    assert "name: threek8s" in shown and "version: 1.0.0" in shown and "appVersion: 1.0.0" in shown
    values = run_helm(helm_bin, helm_home, "show", "values", str(archive)).stdout
    assert "registry: ghcr.io/stianfro/threek8s" in values
    docs = render_chart(helm_bin, archive)
    assert len(docs) == 4
    assert validate_manifests(docs) == []
    run_helm(helm_bin, helm_home, "lint", str(archive))


def test_refuses_directories_without_a_usable_chart_yaml(tmp_path: Path) -> None:
    with pytest.raises(ChartPackageError, match="no Chart.yaml"):
        package_chart(tmp_path)
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: x\n")
    with pytest.raises(ChartPackageError, match="name and version"):
        package_chart(tmp_path)
    (tmp_path / "Chart.yaml").write_text("name: [x\n")
    with pytest.raises(ChartPackageError, match="cannot be read as YAML"):
        package_chart(tmp_path)
