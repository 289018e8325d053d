"""What reproducible exports cost (issue 20, item 9): clamping every timestamp to the commit time
(``normalise_export``) against the export it follows (``export_image``: docker save, hash, gzip), in
one run, on one image.

Run: ``.venv/bin/python -m bench.reproducible_export [--quick]`` (as root: it starts its own
dockerd and registry). The image: the sandbox's busybox base (``base/tiny:1``) plus a RUN that
writes 64 MB of files (many small ones and a large one, so both the per-entry and the
per-byte costs show), built once with BuildKit. Each round exports it afresh and normalises that export; the figure is
normalise / export (min, median, max over 5 rounds). ``--quick``: 8 MB, one round. No goal: the
figure says what the pipeline's export step grows by.

A second figure: the same export with the layer cache (``LAYER_CACHE_DIR``) holding the image's
layers, as the next release finds it when its base and dependency layers did not change (each
taken layer is still decompressed and checked against its diff_id) / the export without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Figure, main, ratio_figure  # noqa: E402
from releases.imagebuild.export import export_image  # noqa: E402
from releases.imagebuild.layer_cache import LayerCache  # noqa: E402
from releases.imagebuild.reproducible import normalise_export  # noqa: E402
from releases.oci import RegistryClient  # noqa: E402
from releases.sandbox.registry import start_registry  # noqa: E402
from releases.sandbox.tiny_base import push_multiarch_base_image  # noqa: E402
from tests.fixtures.dockerd import start_dockerd  # noqa: E402

DOCKER_CLI = "/usr/bin/docker"
COMMIT_TIME = 1735689600


def build(docker_host: str, base: str, megabytes: int, workdir: Path) -> str:
    small = max(1, megabytes * 1024 // 64)  # 64 KiB files for half the bytes
    script = (
        f"mkdir -p /data/small /data/large && i=0 && while [ $i -lt {small // 2} ]; do "
        "head -c 65536 /dev/urandom > /data/small/$i; i=$((i+1)); done && "
        f"head -c {megabytes * 1024 * 1024 // 2} /dev/urandom > /data/large/blob"
    )
    context = workdir / "context"
    context.mkdir()
    (workdir / "Dockerfile").write_text(f"FROM {base}\nRUN {script}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_BUILDKIT": "1", "DOCKER_HOST": docker_host}
    env["HOME"] = str(workdir)
    tag = "bench/reproducible:1"
    subprocess.run(
        [DOCKER_CLI, "build", "--network", "none", "--platform", "linux/amd64", "-q"]
        + ["-f", str(workdir / "Dockerfile"), "-t", tag, str(context)],
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return tag


def run(quick: bool) -> list[Figure]:
    rounds, megabytes = (1, 8) if quick else (5, 64)
    workdir = Path(tempfile.mkdtemp(prefix="bench-repro-"))
    registry = start_registry(workdir / "registry")
    engine = start_dockerd(workdir / "dockerd", [registry.host])
    try:
        with RegistryClient(registry.host) as client:
            base = push_multiarch_base_image(client).reference
        tag = build(engine.base_url, base, megabytes, workdir)
        docker = engine.client()
        exports, normalisations, cached_exports = [], [], []
        cache = LayerCache(workdir / "layer-cache", max_bytes=4 * 1024**3)
        export_image(docker, tag, workdir / "export-priming", cache=cache)  # what the previous release left
        for number in range(rounds):
            target = workdir / f"export-{number}"
            started = time.perf_counter()
            exported = export_image(docker, tag, target)
            exported_at = time.perf_counter()
            normalise_export(exported, COMMIT_TIME)
            finished = time.perf_counter()
            exports.append(exported_at - started)
            normalisations.append(finished - exported_at)
            shutil.rmtree(target, ignore_errors=True)
            started = time.perf_counter()
            again = export_image(docker, tag, target, cache=cache)
            cached_exports.append(time.perf_counter() - started)
            if again.manifest_digest != exported.manifest_digest:
                raise SystemExit("the export with the layer cache differs from the export without it")
            shutil.rmtree(target, ignore_errors=True)
        docker.close()
    finally:
        engine.cleanup()
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return [
        ratio_figure(
            f"a {megabytes} MB image: clamping its timestamps to the commit time (normalise_export) / "
            "the export it follows (docker save, hash, gzip)",
            normalisations,
            exports,
            "s",
        ),
        ratio_figure(
            f"the same {megabytes} MB image exported with the layer cache holding its layers (the next "
            "release's export when they did not change) / without",
            cached_exports,
            exports,
            "s",
        ),
    ]


if __name__ == "__main__":
    main(run)
