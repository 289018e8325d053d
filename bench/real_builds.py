"""Real Dockerfile builds (issue 20): what publishing the threek8s-shaped sample costs against doing
the same by hand with BuildKit on the same kind of engine, in one run.

Run: ``.venv/bin/python -m bench.real_builds [--quick]`` (as root: it starts its own dockerd
engines; full: ``EDGE_ROUNDS`` rounds, so that a goal missed or met within the noise comes with
its spread; ``--quick``: one). The sample (``examples/``: 2 images x linux/amd64 + linux/arm64, arm64
RUN steps under qemu, and its chart) goes through the real pipeline with a real
Celery worker (concurrency 2). Its own PostgreSQL database (``<prefix>real_builds``, recreated),
Redis database 11, registry, and a fresh, cold engine (no image, no build cache) per measurement.

Figures, each round:

- **cold publish / by hand** (goal <= 1.3x): a cold engine publishes a new version end to end
  (build, scan, export, push by digest, index, chart); against, on another cold engine, the same
  Dockerfiles built by hand with Debian's docker CLI and BuildKit (``docker build --platform ...
  --network none`` per image and platform, ``docker push`` of each, ``docker manifest create/push``
  of the index) and the chart packaged and pushed with ``helm push``.
- **second release / cold** (goal <= 0.5x): the next version, whose only changes are application
  files (the page, the backend's config), published by a fresh worker on the engine of the cold
  publish (its build cache and cache mounts are there: what a real second release meets).
- **nothing changed / cold** (the floor of the figure above): then a version whose application
  files are the second's (only the chart's version differs), by another fresh worker on the same
  engine: every build step is in the cache, so this is what a release costs here whatever is
  cached or reused. A second release cannot take less; when this is above 0.5x, no reuse of the
  previous release's work can meet the goal above, only a cheaper frame every release pays.
- **the least a second release can cost here** (for the record): on another cold engine, the same
  Dockerfiles by the leanest script there is, every image and platform built and pushed at once,
  then the indexes, then the chart: its cold release, its second release (application files
  changed) and a release where nothing changed, each as a ratio to its own cold one. Nothing is
  checked out, scanned, recorded or signed; when its second release is above 0.5x as well, the goal
  above is out of reach of any pipeline on this engine with this sample.
- **platforms at once / one after another**: the cold publish above builds each image's platforms
  at once (``BUILD_PLATFORMS_AT_ONCE=true``, the default); against, on a third cold engine, a cold
  publish with ``false``. The faster is what the default should be.
- **per platform**: the seconds each platform's builds took in that one-after-another publish
  (amd64 native, arm64 emulated), from the images' build records.
- **on overlay2** (for the record): by hand, then a cold publish and a second release, on engines
  with the ``overlay2`` storage driver (Docker's default, what production engines use) instead of
  this sandbox's ``vfs``. On vfs, moby diffs a new layer with its ``NaiveDiffDriver``, which then
  sleeps until the next whole second ("to make sure calls within same second receive correct
  result", ``daemon/graphdriver/fsdiff.go`` in 20.10): every build that makes a layer ends on a
  second boundary, up to a second per build that no pipeline can save. Left out, saying why, where
  the kernel has no overlayfs.

Every version writes its number into the files the Dockerfiles copy, so a cold publish shares no
step with another version. Each worker has its own ``BUILD_WORKDIR``; the workers of one engine
share one ``LAYER_CACHE_DIR``, as worker processes on one machine do (its default is under
``BUILD_WORKDIR``), and each engine's is new.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _release_harness as harness  # noqa: E402
from bench._database import use_database  # noqa: E402
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, ratio_figure  # noqa: E402
from releases.imagebuild.lowering import lower_dockerfile  # noqa: E402
from tests.fixtures.dockerd import DockerdStartError  # noqa: E402

COLD_GOAL = 1.3
#: Versions each round publishes: cold, second, nothing changed, platforms one after another, two
#: on overlay2, and the three of the script building everything at once.
PER_ROUND = 9
SECOND_GOAL = 0.5
PLATFORMS = ("linux/amd64", "linux/arm64")
IMAGES = ("frontend", "backend")
DOCKER_CLI = "/usr/bin/docker"


def by_hand(
    source: Path,
    registry: harness.SampleRegistry,
    docker_host: str,
    helm: str,
    version: str,
    commit: str,
    *,
    at_once: bool = False,
) -> float:
    """Build and push the sample's images (each platform, then the index) and its chart by hand.

    ``at_once``: the leanest script there is, every image and platform built and pushed at once,
    then both indexes at once, then the chart (nothing checked out, scanned, recorded or signed)."""
    env = {
        **os.environ,
        "DOCKER_HOST": docker_host,
        "DOCKER_BUILDKIT": "1",
        "DOCKER_CLI_EXPERIMENTAL": "enabled",
        "DOCKER_CONFIG": tempfile.mkdtemp(prefix="bench-docker-"),
    }
    namespace = f"{registry.host}/byhand"

    def run(*argv: str, cwd: Path | None = None) -> None:
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"by hand: {' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def build_and_push(image: str, platform: str) -> str:
        tag = f"{namespace}/threek8s-{image}:{version}-{platform.split('/')[1]}"
        run(
            DOCKER_CLI,
            "build",
            "--progress=plain",
            "--network",
            "none",
            "--platform",
            platform,
            "--build-arg",
            f"BASE_IMAGE={registry.base_image}",
            "-f",
            dockerfiles[image],
            "-t",
            tag,
            str(source / image),
        )
        run(DOCKER_CLI, "push", tag)
        return tag

    def push_index(image: str) -> None:
        index = f"{namespace}/threek8s-{image}:{version}"
        run(DOCKER_CLI, "manifest", "create", "--insecure", index, *tags[image])
        run(DOCKER_CLI, "manifest", "push", "--insecure", index)

    harness.git(source, "checkout", "-q", commit)
    started = time.perf_counter()
    dockerfiles = {}
    for image in IMAGES:
        # What a person must build on this engine: the Dockerfile with its heredocs lowered.
        lowered = lower_dockerfile((source / image / "Dockerfile").read_text())
        lowered.write_files(source / image)
        dockerfiles[image] = str(source / image / lowered.build_file)
    if at_once:
        with ThreadPoolExecutor(max_workers=len(IMAGES) * len(PLATFORMS)) as pool:
            built = {(i, p): pool.submit(build_and_push, i, p) for i in IMAGES for p in PLATFORMS}
            tags = {image: [built[image, platform].result() for platform in PLATFORMS] for image in IMAGES}
            list(pool.map(push_index, IMAGES))
    else:
        tags = {}
        for image in IMAGES:
            tags[image] = [build_and_push(image, platform) for platform in PLATFORMS]
            push_index(image)
    package_dir = Path(tempfile.mkdtemp(prefix="bench-chart-"))
    run(helm, "package", str(source / "chart"), "--destination", str(package_dir))
    (chart,) = package_dir.glob("*.tgz")
    run(helm, "push", str(chart), f"oci://{namespace}/chart", "--plain-http")
    elapsed = time.perf_counter() - started
    harness.git(source, "checkout", "-q", "-f", "main")
    harness.git(source, "clean", "-q", "-fdx")
    return elapsed


def platform_seconds(version: str) -> dict[str, float]:
    """Per platform, the seconds its builds took in ``version`` (both images)."""
    seconds = dict.fromkeys(PLATFORMS, 0.0)
    from releases.models import DockerImage

    for steps in DockerImage.objects.filter(tag=version).values_list("build_steps", flat=True):
        for platform, record in steps.items():
            seconds[platform] += float(record.get("seconds") or 0)
    return seconds


def cached_steps(version: str) -> tuple[int, int]:
    cached = total = 0
    from releases.models import DockerImage

    for steps in DockerImage.objects.filter(tag=version).values_list("build_steps", flat=True):
        for record in steps.values():
            for step in record.get("steps", []):
                if "] FROM " in step["step"]:
                    continue
                total += 1
                cached += bool(step["cached"])
    return cached, total


def publish(
    registry: harness.SampleRegistry,
    docker_host: str,
    url: str,
    helm: str,
    workdir: Path,
    commits: dict[str, str],
    engine: str,
    name: str,
    version: str,
    **extra_env: str,
) -> float:
    """Publish ``version`` with a fresh worker on ``docker_host``; the workers of one ``engine`` share
    its layer cache."""
    extra_env.setdefault("LAYER_CACHE_DIR", str(workdir / f"layer-cache-{engine}"))
    with harness.release_worker(
        registry, docker_host, url, helm, workdir, name=name, concurrency=2, extra_env=extra_env
    ):
        return harness.publish_and_wait(name, [version], commits)


def on_overlay2(
    source: Path,
    registry: harness.SampleRegistry,
    url: str,
    helm: str,
    workdir: Path,
    commits: dict[str, str],
    number: int,
    versions: list[str],
) -> tuple[float, float, float]:
    """By hand, then a cold publish and a second release, on cold ``overlay2`` engines (seconds)."""
    first, following = versions
    with harness.docker_engine(workdir / f"overlay2-hand-{number}", registry, "overlay2") as host:
        hand = by_hand(source, registry, host, helm, first, commits[first])
    with harness.docker_engine(workdir / f"overlay2-{number}", registry, "overlay2") as host:
        on_engine = partial(publish, registry, host, url, helm, workdir, commits, f"overlay2-{number}")
        return hand, on_engine(f"overlay2cold{number}", first), on_engine(f"overlay2second{number}", following)


def run(quick: bool) -> list[Figure]:
    use_database("real_builds", redis_db=11)
    rounds = 1 if quick else EDGE_ROUNDS
    helm = harness.require_root_and_helm()
    versions = [f"1.{n}.{patch}" for n in range(rounds) for patch in range(PER_ROUND)]
    unchanged = frozenset(f"1.{n}.{patch}" for n in range(rounds) for patch in (2, 8))
    cold, hand, second, floor, one_by_one, sequential_platforms = [], [], [], [], [], []
    lean_cold, lean_second, lean_floor = [], [], []
    overlay_hand, overlay_cold, overlay_second, overlay_missing = [], [], [], ""
    with tempfile.TemporaryDirectory(prefix="bench-real-builds-") as temp:
        workdir = Path(temp)
        url, commits = harness.sample_source(workdir, versions, same_application=unchanged)
        source = workdir / "source"
        with harness.sample_registry(workdir) as registry:
            for number in range(rounds):
                ours = versions[PER_ROUND * number : PER_ROUND * (number + 1)]
                first, following, same, sequential = ours[:4]
                with harness.docker_engine(workdir / f"hand-{number}", registry) as docker_host:
                    hand.append(by_hand(source, registry, docker_host, helm, first, commits[first]))
                with harness.docker_engine(workdir / f"cold-{number}", registry) as docker_host:
                    on_engine = partial(publish, registry, docker_host, url, helm, workdir, commits, f"{number}")
                    cold.append(on_engine(f"cold{number}", first, BUILD_PLATFORMS_AT_ONCE="true"))
                    second.append(on_engine(f"second{number}", following))
                    reused, total = cached_steps(following)
                    floor.append(on_engine(f"floor{number}", same))
                    floor_reused, floor_total = cached_steps(same)
                with harness.docker_engine(workdir / f"lean-{number}", registry) as docker_host:
                    lean = partial(by_hand, source, registry, docker_host, helm, at_once=True)
                    for seconds, version in zip((lean_cold, lean_second, lean_floor), ours[6:9], strict=True):
                        seconds.append(lean(version, commits[version]))
                with harness.docker_engine(workdir / f"sequential-{number}", registry) as docker_host:
                    on_engine = partial(
                        publish, registry, docker_host, url, helm, workdir, commits, f"sequential-{number}"
                    )
                    one_by_one.append(on_engine(f"sequential{number}", sequential, BUILD_PLATFORMS_AT_ONCE="false"))
                    sequential_platforms.append(platform_seconds(sequential))
                if not overlay_missing:
                    try:
                        by_hand_seconds, cold_seconds, second_seconds = on_overlay2(
                            source, registry, url, helm, workdir, commits, number, ours[4:6]
                        )
                        overlay_hand.append(by_hand_seconds)
                        overlay_cold.append(cold_seconds)
                        overlay_second.append(second_seconds)
                    except DockerdStartError as error:
                        overlay_missing = str(error).splitlines()[0]
                        print(f"overlay2 left out: {overlay_missing}", flush=True)
                print(
                    f"round {number + 1}: by hand {hand[-1]:.1f} s, cold publish {cold[-1]:.1f} s, "
                    f"second release {second[-1]:.1f} s ({reused} of {total} steps cached), "
                    f"nothing changed {floor[-1]:.1f} s ({floor_reused} of {floor_total} steps cached), "
                    f"platforms one after another {one_by_one[-1]:.1f} s; by hand, all at once: cold "
                    f"{lean_cold[-1]:.1f} s, second {lean_second[-1]:.1f} s, nothing changed {lean_floor[-1]:.1f} s"
                    + (
                        ""
                        if overlay_missing
                        else f"; overlay2: by hand {overlay_hand[-1]:.1f} s, cold publish {overlay_cold[-1]:.1f} s, "
                        f"second release {overlay_second[-1]:.1f} s"
                    ),
                    flush=True,
                )
    amd64 = [seconds["linux/amd64"] for seconds in sequential_platforms]
    arm64 = [seconds["linux/arm64"] for seconds in sequential_platforms]
    figures = [
        ratio_figure(
            "the threek8s-shaped sample (2 images x 2 platforms + chart), cold engine: publish end to end / "
            "the same Dockerfiles built and pushed by hand with BuildKit",
            cold,
            hand,
            "s",
            Goal("<=", COLD_GOAL),
        ),
        ratio_figure(
            "a second release changing only application files, fresh worker, same engine / the cold publish",
            second,
            cold,
            "s",
            Goal("<=", SECOND_GOAL),
        ),
        ratio_figure(
            "the floor of the figure above: a release whose every build step is cached (nothing changed but "
            "the chart's version), fresh worker, same engine / the cold publish",
            floor,
            cold,
            "s",
        ),
        ratio_figure(
            "the least a second release can cost here: by hand, every image and platform built and pushed at "
            "once (nothing checked out, scanned, recorded or signed), a second release / its own cold one",
            lean_second,
            lean_cold,
            "s",
        ),
        ratio_figure("the same script when nothing changed / its own cold release", lean_floor, lean_cold, "s"),
        ratio_figure(
            "cold publish: both platforms of an image at once / one after another (the faster is the default)",
            cold,
            one_by_one,
            "s",
        ),
        ratio_figure(
            "build seconds per platform, one after another (2 images): arm64 emulated / amd64 native",
            arm64,
            amd64,
            "s",
        ),
    ]
    if len(overlay_cold) == rounds:
        figures += [
            ratio_figure(
                "on overlay2 (Docker's default storage driver; the goals above are measured on vfs, this "
                "sandbox's engine): cold publish / by hand",
                overlay_cold,
                overlay_hand,
                "s",
            ),
            ratio_figure(
                "on overlay2: a second release changing only application files, fresh worker, same engine / "
                "the cold publish",
                overlay_second,
                overlay_cold,
                "s",
            ),
        ]
    return figures


if __name__ == "__main__":
    main(run)
