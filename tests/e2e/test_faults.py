"""Faults of the real services under a release, caused while a real Celery worker publishes it.

Each test publishes the sample release (both images, amd64 only, and the chart) with real worker
processes, PostgreSQL, Redis, dockerd, docker-registry and helm, breaks one thing mid-way, and
holds the same promise: the release ends published (the work recovered by itself) or failed with a
reason a person can act on, after which ``retry`` publishes it; every tag in the registry points at
the digest the database recorded; no artifact is recorded twice; no row is left active.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType

from releases import services
from releases.choices import MOVING_TAG, ChartState, ImageState, ReleaseState
from releases.models import DockerImage, HelmChart, ReleaseArtifact, ReleaseVersion, StateTransition
from releases.oci import RegistryClient
from releases.sandbox.registry import RunningRegistry
from tests.fixtures.celery_worker import worker_environment
from tests.fixtures.faults import (
    restart_dockerd,
    restart_registry,
    terminate_backends,
    wait_for,
)
from tests.fixtures.proxy import BreakingProxy
from tests.releases.test_stalled_work import assert_nothing_active

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.faults]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VERSION = "1.0.0"
ENDED = {ReleaseState.PUBLISHED, ReleaseState.FAILED}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class FaultRun:
    """One release under fault: the worker environment, where its artifacts go, and the checks."""

    env: dict[str, str]
    registry: RunningRegistry  # the real registry behind any proxy: where the tags are checked
    namespace: str
    start_worker: Callable[[dict[str, str]], subprocess.Popen]
    commit_sha: str
    logs: Path  # where the workers' logs are (worker-N.log)
    release_pk: int = 0
    workers: list[subprocess.Popen] = field(default_factory=list)

    def worker(self, **overrides: str) -> subprocess.Popen:
        process = self.start_worker({**self.env, **overrides})
        self.workers.append(process)
        return process

    def kill_workers(self) -> None:
        """SIGKILL every worker of this run, with its pool processes (its own process group)."""
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def worker_log(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("worker-*.log")))

    def publish(self) -> ReleaseVersion:
        release = services.create_release(version=VERSION, commit_sha=self.commit_sha, pr_number=1)
        self.release_pk = release.pk
        return services.publish_release(release.pk)

    def release(self) -> ReleaseVersion:
        return ReleaseVersion.objects.get(pk=self.release_pk)

    def image(self, name: str = "threek8s-backend") -> DockerImage:
        return DockerImage.objects.get(name=name, tag=VERSION)

    def chart(self) -> HelmChart:
        return HelmChart.objects.get(chart_version=VERSION)

    def wait_ended(self, timeout: float = 240) -> ReleaseVersion:
        """The release once it and everything it started have ended."""

        def ended() -> ReleaseVersion | None:
            release = self.release()
            if release.state in ENDED and not any_active():
                return release
            return None

        release = wait_for(ended, timeout, f"release {VERSION} and its artifacts to end", interval=0.5)
        print(f"fault outcome: {release.state} {release.failure_reason!r}")  # for the report (pytest -rP)
        return release

    def retry_until_published(self, release: ReleaseVersion) -> ReleaseVersion:
        """A failed release must say why; ``retry`` then publishes it."""
        if release.state == ReleaseState.FAILED:
            assert release.failure_reason, "a failed release must say why"
            first = release.failure_reason
            services.retry_release(release.pk)
            release = self.wait_ended()
            assert release.state == ReleaseState.PUBLISHED, f"after {first!r}, retried: {release.failure_reason}"
        return release

    def assert_published_consistently(self) -> None:
        release = self.release()
        assert release.state == ReleaseState.PUBLISHED, release.failure_reason
        assert_nothing_active()
        # No artifact recorded twice: one per kind, one transition to each final state.
        kinds = Counter(ReleaseArtifact.objects.filter(release=release).values_list("type", flat=True))
        assert sorted(kinds) == ["docker-backend", "docker-frontend", "helm-chart"] and set(kinds.values()) == {1}
        for row, final in [
            (self.image("threek8s-backend"), "mark_available"),
            (self.image("threek8s-frontend"), "mark_available"),
            (self.chart(), "mark_indexed"),
        ]:
            transitions = StateTransition.objects.filter(
                content_type=ContentType.objects.get_for_model(type(row)), object_id=row.pk, transition=final
            )
            assert transitions.count() == 1, f"{row}: {final} fired {transitions.count()} times"
        assert StateTransition.objects.filter(object_id=release.pk, transition="mark_published").count() == 1
        # Every tag in the registry points at what the database recorded, and nothing else is tagged.
        recorded = {
            image.repository_path: {image.tag: image.digest, MOVING_TAG: image.digest}
            for image in DockerImage.objects.filter(tag=VERSION)
        }
        chart = self.chart()
        recorded[chart.repository_path] = {chart.chart_version: chart.digest}
        with RegistryClient(self.registry.host) as client:
            for repository, tags in recorded.items():
                live = {tag: client.head_manifest(repository, tag) for tag in client.list_tags(repository)}
                assert {tag: ref.digest for tag, ref in live.items() if ref} == tags, repository
        for artifact in ReleaseArtifact.objects.filter(release=release):
            assert artifact.uri.endswith("@" + artifact.checksum)


def any_active() -> bool:
    return (
        ReleaseVersion.objects.active().exists()
        or DockerImage.objects.active().exists()
        or HelmChart.objects.active().exists()
    )


def sample_source(root: Path) -> str:
    """The sample (examples/) committed to a real git repository at version 1.0.0; its commit."""
    shutil.copytree(EXAMPLES, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=ci@example.com", "-c", "user.name=CI", "add", "-A")
    git(root, "-c", "user.email=ci@example.com", "-c", "user.name=CI", "commit", "-q", "-m", "chore: release 1.0.0")
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def proxies() -> Iterator[Callable[..., BreakingProxy]]:
    """``proxies(upstream, rule, ...)``: a :class:`BreakingProxy` open until the test ends (retries included)."""
    opened: list[BreakingProxy] = []

    def open_proxy(*args, **kwargs) -> BreakingProxy:
        opened.append(BreakingProxy(*args, **kwargs))
        return opened[-1]

    yield open_proxy
    for proxy in opened:
        proxy.close()


@pytest.fixture
def fault_run(tmp_path, settings, oci_registry, docker_host, multiarch_base_image, helm_bin, celery_worker_factory):
    """A factory of :class:`FaultRun`: ``fault_run(registry=..., through=proxy_host)``."""

    def make(registry: RunningRegistry | None = None, through: str | None = None, **env: str) -> FaultRun:
        registry = registry or oci_registry
        namespace = f"{through or registry.host}/f{uuid.uuid4().hex[:8]}"
        settings.REGISTRY_NAMESPACE = namespace
        base = {
            "REGISTRY_NAMESPACE": namespace,
            "SOURCE_REPOSITORY_URL": f"file://{tmp_path / 'threek8s'}",
            "DOCKER_HOST": docker_host,
            "BUILD_WORKDIR": str(tmp_path / "builds"),
            "HELM_BIN": str(helm_bin),
            "IMAGE_PLATFORMS": "linux/amd64",
            "IMAGE_BUILD_ARGS": f"BASE_IMAGE={multiarch_base_image.reference}",
            "IMAGE_SIZE_BUDGET_BYTES": str(50 * 1024 * 1024),
            **env,
        }
        return FaultRun(
            env=base,
            registry=registry,
            namespace=namespace,
            start_worker=celery_worker_factory,
            commit_sha=sample_source(tmp_path / "threek8s"),
            logs=tmp_path,
        )

    return make


def test_a_registry_rate_limiting_a_push_for_a_while_is_waited_out_and_the_release_published(
    fault_run, oci_registry, proxies
):
    # Given a registry that, from the first blob upload on, answers every request 429 or 503 with
    # Retry-After: 1 for three seconds
    window: dict[str, float] = {}

    def rule(method: str, path: str, served: int) -> str:
        now = time.monotonic()
        if "start" not in window and method == "PUT" and "/blobs/" in path:
            window["start"] = now
        if "start" in window and now - window["start"] < 3:
            return "429" if len(proxy.requests) % 2 else "503-retry-after"
        return "forward"

    proxy = proxies(oci_registry.url, rule, retry_after="1")
    run = fault_run(through=proxy.host)
    run.worker()

    # When the release is published through it
    run.publish()
    release = run.wait_ended()

    # Then the worker waited as asked and the release was published without failing
    assert any(action != "forward" for _, _, action, _ in proxy.requests), "the fault never happened"
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    run.assert_published_consistently()


def slow_base_pulls(proxies, upstream: str, seconds: float = 2.0) -> BreakingProxy:
    """A proxy in front of the registry holding the base image, whose manifest answers are slow: a
    build spends a few seconds pulling its base, long enough to break something during it."""
    return proxies(
        upstream,
        lambda method, path, served: "slow" if "/manifests/" in path and "/base/" in path else "forward",
        slow_seconds=seconds,
    )


def base_pulled_through(proxy: BreakingProxy) -> Callable[[], bool]:
    return lambda: any("/manifests/" in path and "/base/" in path for _, path, _, _ in proxy.requests)


def blob_upload_through(proxy: BreakingProxy, repository: str = "") -> Callable[[], bool]:
    return lambda: any(m == "PUT" and "/blobs/" in p and repository in p for m, p, _, _ in proxy.requests)


def slow_uploads(proxies, upstream: str, seconds: float = 1.0) -> BreakingProxy:
    """A proxy in front of the registry whose blob uploads are slow: a push takes a few seconds."""
    return proxies(
        upstream,
        lambda method, path, served: "slow" if method == "PUT" and "/blobs/" in path else "forward",
        slow_seconds=seconds,
    )


def test_the_registry_killed_and_restarted_mid_push_is_retried_and_the_release_published(
    fault_run, registry_factory, proxies
):
    # Given a registry of this test, behind a proxy whose blob uploads are slow
    registry = registry_factory(name="restarted-registry")
    proxy = slow_uploads(proxies, registry.url)
    run = fault_run(registry=registry, through=proxy.host)
    run.worker()
    run.publish()

    # When it is SIGKILLed during the first blob upload and comes back 6 s later (longer than the
    # client's own retries: the task has to retry)
    wait_for(blob_upload_through(proxy), 120, "a blob upload")
    restart_registry(registry, down_for=6)
    release = run.wait_ended()

    # Then the push resumed and the release was published
    assert any(status == 0 for *_, status in proxy.requests), "no request met the dead registry"
    assert run.retry_until_published(release).state == ReleaseState.PUBLISHED
    run.assert_published_consistently()


def test_dockerd_restarted_mid_build_is_retried_and_the_release_published(
    fault_run, oci_registry, running_dockerd, multiarch_base_image, proxies
):
    # Given builds whose base image pull is slow
    proxy = slow_base_pulls(proxies, oci_registry.url)
    base = multiarch_base_image.reference.replace(oci_registry.host, proxy.host)
    run = fault_run(IMAGE_BUILD_ARGS=f"BASE_IMAGE={base}")
    run.worker()
    run.publish()

    # When the Docker engine is restarted while it pulls the base of the first build
    wait_for(base_pulled_through(proxy), 120, "the first build to pull its base")
    restart_dockerd(running_dockerd, down_for=2)
    release = run.wait_ended()

    # Then the build was retried on the restarted engine (or failed saying so; retry publishes)
    assert "EngineUnavailable" in run.worker_log(), "the build never lost the engine"
    assert run.retry_until_published(release).state == ReleaseState.PUBLISHED
    run.assert_published_consistently()


def test_the_workers_database_connections_dropped_mid_build_are_recovered(
    fault_run, oci_registry, multiarch_base_image, proxies
):
    # Given a worker whose PostgreSQL sessions are named, and builds whose base image pull is slow
    proxy = slow_base_pulls(proxies, oci_registry.url)
    base = multiarch_base_image.reference.replace(oci_registry.host, proxy.host)
    application_name = f"fault-worker-{uuid.uuid4().hex[:8]}"
    database_url = worker_environment({})["DATABASE_URL"] + f"?application_name={application_name}"
    run = fault_run(IMAGE_BUILD_ARGS=f"BASE_IMAGE={base}", DATABASE_URL=database_url)
    run.worker()
    run.publish()

    # When every session of the worker is terminated while it builds (it holds the image's and the
    # engine's advisory locks, and is about to record the build)
    wait_for(base_pulled_through(proxy), 120, "the first build to pull its base")
    terminated = terminate_backends(application_name)
    release = run.wait_ended()

    # Then the tasks retried on new connections and the release was published
    assert terminated >= 1
    assert "OperationalError" in run.worker_log(), "no task lost its connection"
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    run.assert_published_consistently()


def test_a_full_build_directory_fails_the_release_naming_the_disk_and_retry_publishes(fault_run, small_disk):
    # Given a build directory on a disk with almost no space left
    small_disk.fill(leave_bytes=64 * 1024)
    run = fault_run(BUILD_WORKDIR=str(small_disk.path))
    run.worker()

    # When the release is published
    run.publish()
    release = run.wait_ended()

    # Then it failed naming the full disk
    assert release.state == ReleaseState.FAILED
    assert "No space left on device" in release.failure_reason, release.failure_reason
    assert "BUILD_WORKDIR" in release.failure_reason, release.failure_reason

    # When space is freed and the release retried, then it is published
    small_disk.free_up()
    assert run.retry_until_published(release).state == ReleaseState.PUBLISHED
    run.assert_published_consistently()


#: Short enough for a killed worker's tasks to be delivered again within the test.
REDELIVERY = {"CELERY_VISIBILITY_TIMEOUT": "5", "CELERY_UNACKED_RESTORE_INTERVAL": "1"}


def slow_scanner(directory: Path, seconds: int = 4) -> str:
    scanner = directory / "slow-scanner"
    scanner.write_text(f"#!/bin/sh\nsleep {seconds}\necho '{{\"Results\": []}}'\n")
    scanner.chmod(0o755)
    return str(scanner)


def in_state(model, state: str, **filters) -> Callable[[], bool]:
    return lambda: model.objects.filter(state=state, **filters).exists()


@pytest.mark.parametrize("stage", ["building", "scanning", "pushing", "uploading"])
def test_a_worker_killed_at_each_stage_is_redelivered_and_the_release_published(
    stage, fault_run, oci_registry, multiarch_base_image, proxies, tmp_path
):
    # Given a worker whose stage `stage` takes a few seconds: a slow base pull (building), a slow
    # scanner (scanning), slow blob uploads (pushing, and the chart's uploading)
    env = dict(REDELIVERY)
    uploads = slow_uploads(proxies, oci_registry.url)
    if stage == "building":
        pulls = slow_base_pulls(proxies, oci_registry.url)
        env["IMAGE_BUILD_ARGS"] = f"BASE_IMAGE={multiarch_base_image.reference.replace(oci_registry.host, pulls.host)}"
        reached = lambda: base_pulled_through(pulls)() and in_state(DockerImage, ImageState.BUILDING)()  # noqa: E731
    elif stage == "scanning":
        env["IMAGE_SCANNER_COMMAND"] = slow_scanner(tmp_path)
        reached = in_state(DockerImage, ImageState.SCANNING)
    elif stage == "pushing":
        reached = lambda: in_state(DockerImage, ImageState.PUSHING)() and blob_upload_through(uploads)()  # noqa: E731
    else:
        reached = lambda: in_state(HelmChart, ChartState.UPLOADING)() and blob_upload_through(uploads, "/chart/")()  # noqa: E731
    run = fault_run(through=uploads.host, **env)
    run.worker()
    run.publish()

    # When the worker (with its pool processes) is SIGKILLed there, and another one starts
    wait_for(reached, 180, f"a worker {stage}")
    run.kill_workers()
    run.worker()
    release = run.wait_ended()

    # Then the new worker took the lost tasks over and published the release
    assert run.retry_until_published(release).state == ReleaseState.PUBLISHED
    run.assert_published_consistently()
    builds = StateTransition.objects.filter(transition="start_build", source=ImageState.QUEUED)
    assert builds.count() == 2, "an image was started more than once"


def test_the_broker_restarted_mid_release_loses_nothing_and_the_release_published(
    fault_run, own_redis, oci_registry, proxies
):
    # Given a worker on a Redis of this test (append-only file, as a broker should persist), and
    # slow blob uploads
    uploads = slow_uploads(proxies, oci_registry.url)
    run = fault_run(
        through=uploads.host,
        CELERY_BROKER_URL=own_redis.url,
        CELERY_RESULT_BACKEND=own_redis.url,
        CELERY_VISIBILITY_TIMEOUT="10",
        CELERY_UNACKED_RESTORE_INTERVAL="1",
    )
    run.worker()
    release = services.create_release(version=VERSION, commit_sha=run.commit_sha, pr_number=1)
    run.release_pk = release.pk
    enqueue_through(run, "publish_release", release.pk)

    # When Redis is restarted (down 2 s) while the first image is pushing
    wait_for(lambda: in_state(DockerImage, ImageState.PUSHING)() and blob_upload_through(uploads)(), 120, "a push")
    own_redis.restart(down_for=2)
    release = run.wait_ended()

    # Then the worker reconnected and the release was published (or failed saying why; retry publishes)
    assert "broker" in run.worker_log().partition("Connection to broker lost")[1], "the worker never lost Redis"
    if release.state == ReleaseState.FAILED:
        enqueue_through(run, "retry_release", release.pk)
        release = run.wait_ended()
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    run.assert_published_consistently()


def enqueue_through(run: FaultRun, use_case: str, release_pk: int) -> None:
    """Run a use case in a process whose broker is the worker's (this process's broker is another)."""
    code = f"import django; django.setup(); from releases import services; services.{use_case}({release_pk})"
    env = worker_environment({**run.env, "DJANGO_SETTINGS_MODULE": "registry.settings"})
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env, check=True)
