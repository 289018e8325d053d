"""normalise_export: two builds of one commit on the real engine give one digest once clamped to the commit time."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

from releases.imagebuild.export import ExportedImage, export_archive, export_image
from releases.imagebuild.reproducible import compare_exports, epoch_text, normalise_export
from releases.sandbox.tiny_base import MTIME as BASE_MTIME
from releases.sandbox.tiny_base import BaseImage
from tests.fixtures.dockerd import RunningDockerd
from tests.fixtures.services import service_missing

DOCKER_CLI = "/usr/bin/docker"
COMMIT_TIME = 1735689600  # 2025-01-01: after the base image's files, before these builds


def _build_and_export(dockerd: RunningDockerd, dockerfile: str, context: Path, workdir: Path) -> ExportedImage:
    if not os.access(DOCKER_CLI, os.X_OK):
        service_missing(f"{DOCKER_CLI} (Debian's docker.io 20.10 CLI) is not installed; run bin/setup")
    tag = f"repro-{uuid.uuid4().hex[:12]}"
    (context.parent / "Dockerfile").write_text(dockerfile)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_BUILDKIT": "1", "DOCKER_HOST": dockerd.base_url}
    env["HOME"] = str(context.parent)
    result = subprocess.run(
        [DOCKER_CLI, "build", "--no-cache", "--network", "none", "--platform", "linux/amd64", "--progress", "plain"]
        + ["-f", str(context.parent / "Dockerfile"), "-t", tag, str(context)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = dockerd.client()
    try:
        return export_image(client, tag, workdir)
    finally:
        client.close()


def _mtimes(image: ExportedImage) -> dict[str, int]:
    found: dict[str, int] = {}
    for layer in image.layers:
        with tarfile.open(layer.path, "r:gz") as tar:
            for member in tar.getmembers():
                found[member.name] = int(member.mtime)
    return found


def _two_builds(dockerd: RunningDockerd, base: BaseImage, tmp_path: Path, run: str) -> list[ExportedImage]:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "app.txt").write_bytes(b"application\n")
    dockerfile = f"FROM {base.reference}\nCOPY app.txt /srv/app.txt\nRUN {run}\n"
    exports = []
    for number in range(2):
        exports.append(_build_and_export(dockerd, dockerfile, context, tmp_path / f"export-{number}"))
        time.sleep(1.1)  # the second build's files get later mtimes
    return exports


def test_two_builds_of_one_commit_get_one_digest_once_clamped_to_the_commit_time(
    running_dockerd: RunningDockerd, multiarch_base_image: BaseImage, tmp_path: Path
) -> None:
    # Given two builds of the same Dockerfile and context, a second apart, without cache
    first, second = _two_builds(
        running_dockerd, multiarch_base_image, tmp_path, "echo built > /srv/built && mkdir /srv/d"
    )
    assert first.manifest_digest != second.manifest_digest, "without normalisation the builds differ"

    # When both are normalised to the commit time
    first_normalised = normalise_export(first, COMMIT_TIME)
    second_normalised = normalise_export(second, COMMIT_TIME)

    # Then they are one image: same manifest, same config, same layers
    assert first_normalised.manifest_digest == second_normalised.manifest_digest
    assert compare_exports("linux/amd64", first_normalised, second_normalised).reproduces
    mtimes = _mtimes(first_normalised)
    assert mtimes["srv/built"] == COMMIT_TIME and mtimes["srv/d"] == COMMIT_TIME
    assert mtimes["bin/busybox"] == BASE_MTIME, "files older than the commit keep their time"
    assert first_normalised.created == epoch_text(COMMIT_TIME)
    # the layout on disk is the normalised image, and the old blobs are gone
    index = (first_normalised.layout_dir / "index.json").read_text()
    assert first_normalised.manifest_digest in index and first.manifest_digest not in index
    assert not first.manifest_path.exists()


def test_a_step_that_writes_the_time_does_not_reproduce_and_the_layer_is_named(
    running_dockerd: RunningDockerd, multiarch_base_image: BaseImage, tmp_path: Path
) -> None:
    first, second = _two_builds(running_dockerd, multiarch_base_image, tmp_path, "date +%s%N > /srv/now")
    comparison = compare_exports(
        "linux/amd64", normalise_export(first, COMMIT_TIME), normalise_export(second, COMMIT_TIME)
    )
    assert not comparison.reproduces
    last = len(first.layers) - 1  # the RUN's layer, the only one that differs
    assert len(comparison.differences) == 1 and comparison.differences[0].startswith(f"layer {last} differs")
    assert str(comparison).startswith("linux/amd64: differs (published sha256:")


def _saved_image(tmp_path: Path, name: str, mtime: int) -> ExportedImage:
    """A one-layer image as ``docker save`` writes it, its files dated ``mtime``, exported."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, kind in (("app", tarfile.DIRTYPE), ("app/app.txt", tarfile.REGTYPE)):
            member = tarfile.TarInfo(path)
            member.type, member.mtime = kind, mtime
            content = b"app\n" if kind == tarfile.REGTYPE else b""
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    diff_id = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    saved = io.BytesIO()
    with tarfile.open(fileobj=saved, mode="w") as tar:
        for path, content in (
            ("layer/layer.tar", layer.getvalue()),
            ("config.json", config.encode()),
            ("manifest.json", json.dumps([{"Config": "config.json", "Layers": ["layer/layer.tar"]}]).encode()),
        ):
            member = tarfile.TarInfo(path)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return export_archive([saved.getvalue()], tmp_path / name)


def test_a_layer_written_within_the_commits_second_normalises_like_one_written_later(tmp_path):
    # Given the same step's layer, once built within the commit's second and once a minute later
    epoch = 1_800_000_000
    same_second = normalise_export(_saved_image(tmp_path, "same-second", epoch), epoch)
    later = normalise_export(_saved_image(tmp_path, "later", epoch + 60), epoch)

    # Then both come out as the same bytes (a rebuild reproduces the published image)
    assert [layer.digest for layer in same_second.layers] == [layer.digest for layer in later.layers]
    assert same_second.manifest_digest == later.manifest_digest
