"""What the benchmarks that publish the sample release share: a database of their own, the sample
source committed once per version, a registry with the tiny multi-arch base image, Docker engines,
real Celery workers, and the wait for releases to end.

Call ``bench._database.use_database`` first, before anything imports Django models: it points this
process at its own PostgreSQL and Redis databases (the database is dropped and migrated afresh)
and sets Django up. Everything else starts real processes (docker-registry, dockerd, ``celery worker``) and
stops them when its ``with`` block ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def require_root_and_helm() -> str:
    """The helm binary; raises ``MissingTool`` when it, dockerd, docker-registry or the privilege
    to start dockerd is missing."""
    from bench._tools import require
    from bench.figures import MissingTool
    from tests.fixtures.helm import find_helm

    require("dockerd", "docker-registry")
    if os.geteuid() != 0:
        raise MissingTool("run as root: the benchmark starts its own dockerd")
    helm = find_helm()
    if helm is None:
        raise MissingTool("helm is not installed; run bin/install-helm")
    return helm


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    return subprocess.run(["git", "-C", str(repo), *identity, *args], check=True, capture_output=True, text=True).stdout


def sample_source(
    workdir: Path, versions: list[str], *, same_application: frozenset[str] = frozenset()
) -> tuple[str, dict[str, str]]:
    """``examples/`` committed once per version under ``workdir/source``: its ``file://`` URL and
    version -> commit.

    The chart's version follows, and every version is written into the files the Dockerfiles copy,
    so no two versions share a build step: a version built on an engine that built another one
    finds nothing in its build cache. A version in ``same_application`` keeps the previous version's
    application files (only the chart's version and the ``VERSION`` files, which no Dockerfile
    copies, change): a release whose every build step is in the cache of an engine that built the
    previous one.
    """
    repo = workdir / "source"
    shutil.copytree(ROOT / "examples", repo)
    git(repo, "init", "-q", "-b", "main")
    stamped = {
        "chart/Chart.yaml": lambda text, version: text.replace("1.0.0", version),
        "backend/config.json": lambda text, version: text.replace("{", f'{{"version": "{version}", ', 1),
        "frontend/index.html": lambda text, version: text.replace("</body>", f"<!-- {version} --></body>"),
    }
    originals = {path: (repo / path).read_text() for path in stamped}
    commits = {}
    application = None
    for version in versions:
        if version not in same_application or application is None:
            application = version
        for path, stamp in stamped.items():
            (repo / path).write_text(stamp(originals[path], version if path.startswith("chart/") else application))
        (repo / "backend" / "VERSION").write_text(version)
        (repo / "frontend" / "VERSION").write_text(version)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"chore: release {version}")
        commits[version] = git(repo, "rev-parse", "HEAD").strip()
    return f"file://{repo}", commits


@dataclass(frozen=True)
class SampleRegistry:
    """A running docker-registry holding the tiny base image; releases go under ``namespace``."""

    host: str
    namespace: str
    base_image: str


@contextmanager
def sample_registry(workdir: Path) -> Iterator[SampleRegistry]:
    """A fresh registry (storage under ``workdir``) with the base image pushed; this process's
    ``REGISTRY_NAMESPACE`` points into it for the block."""
    from django.conf import settings

    from releases.oci import RegistryClient
    from releases.sandbox.registry import start_registry
    from releases.sandbox.tiny_base import push_multiarch_base_image

    registry = start_registry(workdir / "registry")
    try:
        with RegistryClient(registry.host) as client:
            base = push_multiarch_base_image(client)
        namespace = f"{registry.host}/bench/threek8s"
        settings.REGISTRY_NAMESPACE = namespace
        yield SampleRegistry(registry.host, namespace, base.reference)
    finally:
        registry.stop()


@contextmanager
def docker_engine(workdir: Path, registry: SampleRegistry, storage_driver: str = "vfs") -> Iterator[str]:
    """A private dockerd (data under ``workdir``, cold: no image, no build cache) trusting the
    registry over HTTP, on ``storage_driver``; yields its ``DOCKER_HOST``."""
    from tests.fixtures.dockerd import start_dockerd

    dockerd = start_dockerd(workdir, [registry.host], storage_driver=storage_driver)
    try:
        yield dockerd.base_url
    finally:
        dockerd.cleanup()


@contextmanager
def release_worker(
    registry: SampleRegistry,
    docker_host: str,
    source_url: str,
    helm: str,
    workdir: Path,
    *,
    name: str,
    concurrency: int,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """A real ``celery worker`` on every queue, building on ``docker_host`` (checkouts under
    ``workdir/builds-<name>``, its log in ``workdir/<name>.log``); stopped when the block ends."""
    from tests.fixtures.celery_worker import start_worker, stop_worker, worker_environment

    env = worker_environment(
        {
            "REGISTRY_NAMESPACE": registry.namespace,
            "SOURCE_REPOSITORY_URL": source_url,
            "DOCKER_HOST": docker_host,
            "BUILD_WORKDIR": str(workdir / f"builds-{name}"),
            "HELM_BIN": helm,
            "IMAGE_BUILD_ARGS": f"BASE_IMAGE={registry.base_image}",
            **(extra_env or {}),
        }
    )
    worker = start_worker(env, workdir / f"{name}.log", concurrency=concurrency, name=name)
    try:
        yield
    finally:
        stop_worker(worker, timeout=60)


def publish_and_wait(name: str, versions: list[str], commits: Mapping[str, str], timeout: float = 900) -> float:
    """Create a release per version, publish them all, and wait until every one has ended: the
    wall clock in seconds from the first publish. Exits naming the releases that failed."""
    from releases import services
    from releases.choices import ReleaseState
    from releases.models import ReleaseVersion

    releases = [
        services.create_release(version=v, commit_sha=commits[v], pr_number=1, changelog=f"## {v}") for v in versions
    ]
    started = time.perf_counter()
    for release in releases:
        services.publish_release(release.pk)
    ended = {ReleaseState.PUBLISHED, ReleaseState.FAILED}
    while True:
        states = dict(ReleaseVersion.objects.filter(version__in=versions).values_list("version", "state"))
        if all(state in ended for state in states.values()):
            break
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"{name}: not done after {timeout:.0f} s: {states}")
        time.sleep(0.05)  # finer than a step, so the wait adds little to what is measured
    elapsed = time.perf_counter() - started
    failed = ReleaseVersion.objects.filter(version__in=versions, state=ReleaseState.FAILED)
    if failed:
        raise SystemExit(f"{name}: {[(r.version, r.failure_reason) for r in failed]}")
    return elapsed
