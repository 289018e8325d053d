"""No stuck work, with a real Celery worker process, PostgreSQL, Redis, dockerd and docker-registry.

Whatever goes wrong in a task, every row ends published/available, or failed/invalid with a reason a
person can act on: an exception nobody anticipated (injected into the worker's scan step), a step
that hangs past its soft time limit, a build that hangs past even its hard limit
(the worker process is killed; the chord's errback fails the release), and work whose task was lost
(the sweeper re-enqueues it, or fails it once re-enqueueing has not helped).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings

from releases import services
from releases.choices import ChartState, ImageState, ReleaseState
from releases.database.locks import engine_lock
from releases.models import DockerImage, HelmChart, ReleaseVersion
from releases.tasks import build_image_signature, sweep_stalled_work
from tests.fixtures.factories import make_release
from tests.pipeline.test_image_pipeline import SourceRepo
from tests.releases.test_stalled_work import age, assert_nothing_active

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def nothing_active() -> bool:
    return not (
        ReleaseVersion.objects.active().exists()
        or DockerImage.objects.active().exists()
        or HelmChart.objects.active().exists()
    )


@pytest.fixture
def source(tmp_path, settings, oci_registry, docker_host, multiarch_base_image) -> tuple[SourceRepo, dict[str, str]]:
    """A git repository with a frontend and a backend image, and the environment of a worker that
    builds them (amd64 only, to keep the builds short) under a namespace of this test's own."""
    repo = SourceRepo(tmp_path / "source", multiarch_base_image.reference)
    env = {
        "REGISTRY_NAMESPACE": f"{oci_registry.host}/s{uuid.uuid4().hex[:8]}",
        "SOURCE_REPOSITORY_URL": repo.url,
        "DOCKER_HOST": docker_host,
        "BUILD_WORKDIR": str(tmp_path / "builds"),
        "IMAGE_PLATFORMS": "linux/amd64",
        "IMAGE_SIZE_BUDGET_BYTES": str(50 * 1024 * 1024),
    }
    settings.REGISTRY_NAMESPACE = env["REGISTRY_NAMESPACE"]
    return repo, env


@contextmanager
def rows_locked_elsewhere(table: str, pks) -> Iterator[None]:
    """Hold row locks on ``pks`` of ``table`` from another database session for the block."""
    pks = list(pks)
    database = django_settings.DATABASES["default"]
    with (
        psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=database["PORT"] or 5432,
            user=database["USER"],
            dbname=database["NAME"],
        ) as other,
        other.transaction(),
    ):
        locked = other.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) FOR UPDATE", [pks]).fetchall()
        assert len(locked) == len(pks)
        yield


def commit_both_images(repo: SourceRepo) -> str:
    dockerfile = f"FROM {repo.base_image}\nCOPY app.txt /app/app.txt\nUSER 1000\n"
    return repo.commit(
        {
            "backend/Dockerfile": dockerfile,
            "backend/app.txt": "backend\n",
            "frontend/Dockerfile": dockerfile,
            "frontend/app.txt": "frontend\n",
        }
    )


INJECTED_FAULT = """\
# Loaded by the worker's interpreter at start (sitecustomize): the scan step raises an exception
# no code path anticipates. (Every scanner output of an odd shape is a finding now, so a real
# scanner can no longer make one.)
import releases.imagebuild.scan as scan


def parse_scanner_output(data, image_ref):
    raise LookupError("injected: a fault no code path anticipates")


scan.parse_scanner_output = parse_scanner_output
"""


def test_an_exception_nobody_anticipated_fails_the_images_and_the_release_naming_them(
    source, celery_worker_factory, tmp_path
):
    # Given a worker whose scan step raises an exception nobody anticipated, deep in the build
    repo, env = source
    scanner = tmp_path / "scanner"
    scanner.write_text("#!/bin/sh\necho '{\"Results\": []}'\n")
    scanner.chmod(0o755)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(INJECTED_FAULT)
    python_path = os.pathsep.join(filter(None, [str(inject), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    release = make_release("1.0.0", commit_sha=commit_both_images(repo))
    celery_worker_factory({**env, "IMAGE_SCANNER_COMMAND": str(scanner), "PYTHONPATH": python_path})

    # When it is published (real chord of two builds)
    services.publish_release(release.pk)
    wait_until(nothing_active, 300, "every row to end")

    # Then both images failed naming the exception, and the release failed naming both images
    for image in DockerImage.objects.all():
        assert image.state == ImageState.FAILED
        assert image.failure_reason.startswith("unexpected LookupError: injected"), image.failure_reason
        assert image.platform_digests  # built: it was the scan that raised
    release.refresh_from_db()
    assert release.state == ReleaseState.FAILED
    assert release.failure_reason.startswith("image build failed: threek8s-backend: unexpected LookupError")
    assert release.failed_artifact == "threek8s-backend, threek8s-frontend"
    chart = HelmChart.objects.get()
    assert chart.state == ChartState.INVALID and "release 1.0.0 failed" in chart.problems[0]
    assert_nothing_active()


def test_a_step_past_the_soft_time_limit_ends_the_image_failed_naming_the_limit(source, celery_worker_factory):
    # Given builds limited to 2 s, and the Docker engine busy with another build for longer
    repo, env = source
    make_release("1.0.0", commit_sha=repo.backend())
    image = DockerImage.objects.create(name="threek8s-backend", tag="1.0.0")
    celery_worker_factory({**env, "BUILD_TIME_LIMIT_SECONDS": "2", "TIME_LIMIT_GRACE_SECONDS": "120"})

    # When the build waits for the engine past its soft limit
    with engine_lock(env["DOCKER_HOST"]):
        build_image_signature(image.pk).delay()
        wait_until(lambda: DockerImage.objects.get(pk=image.pk).state == ImageState.FAILED, 90, "the time limit")

    # Then it failed naming the limit, the setting and the stage it hung in
    image.refresh_from_db()
    assert image.failure_reason.startswith(
        "build exceeded its 2 s time limit (BUILD_TIME_LIMIT_SECONDS) while building (building linux/amd64 (1/1))"
    ), image.failure_reason
    assert "raise BUILD_TIME_LIMIT_SECONDS" in image.failure_reason
    assert_nothing_active()


def test_chord_members_killed_at_their_hard_limit_leave_no_release_building(
    source, celery_worker_factory, tmp_path, settings
):
    # Given builds limited to 1 s (hard: 3 s), and both image rows locked by someone else, so each
    # build hangs on its first write and its soft-limit handler hangs on its failure write too:
    # a build that ignores its soft limit
    repo, env = source
    release = make_release("1.0.0", commit_sha=commit_both_images(repo))
    celery_worker_factory({**env, "BUILD_TIME_LIMIT_SECONDS": "1", "TIME_LIMIT_GRACE_SECONDS": "2"})
    log = Path(tmp_path / "worker-0.log")

    services.plan_release(release.pk)
    with rows_locked_elsewhere("releases_dockerimage", DockerImage.objects.values_list("pk", flat=True)):
        services.publish_release(release.pk)

        # When the worker kills a build at its hard time limit (the chord errs at once; its errback
        # then waits for the locks, like the other build's soft-limit handler)
        wait_until(lambda: "Hard time limit (3s) exceeded" in log.read_text(errors="replace"), 60, "a hard kill")
        assert ReleaseVersion.objects.get(pk=release.pk).state == ReleaseState.BUILDING

    # Then the chord's errback fails the release naming the time limit. It runs in whichever worker
    # process recorded the failure, and that one may itself be killed at its hard limit while the
    # errback waits: then the sweeper is the backstop, as beat would run it
    try:
        wait_until(nothing_active, 30, "the errback")
    except AssertionError:
        for model in (ReleaseVersion, DockerImage, HelmChart):
            model.objects.active().update(stall_requeues=settings.STALLED_REQUEUE_LIMIT)
            for row in model.objects.active():
                age(row, 45)
        sweep_stalled_work.apply().get()
    release.refresh_from_db()
    assert release.state == ReleaseState.FAILED
    assert "time limit" in release.failure_reason or "no progress for 45 minutes" in release.failure_reason
    assert sorted(DockerImage.objects.values_list("state", flat=True)) == [ImageState.FAILED, ImageState.FAILED]
    assert HelmChart.objects.get().state == ChartState.INVALID
    assert_nothing_active()


def test_the_sweeper_requeues_a_stale_queued_image_which_is_built_and_fails_one_past_its_budget(
    source, celery_worker_factory, settings
):
    # Given two images whose build_image messages were lost 45 minutes ago; one was re-enqueued as
    # often as the budget allows already
    repo, env = source
    sha = repo.backend()
    make_release("1.0.0", commit_sha=sha)
    make_release("1.0.1", commit_sha=sha)
    lost = DockerImage.objects.create(name="threek8s-backend", tag="1.0.0")
    spent = DockerImage.objects.create(name="threek8s-backend", tag="1.0.1")
    DockerImage.objects.filter(pk=spent.pk).update(stall_requeues=settings.STALLED_REQUEUE_LIMIT)
    age(lost, 45)
    age(spent, 45)
    celery_worker_factory(env)

    # When the sweeper runs (as beat would)
    summary = sweep_stalled_work.apply().get()

    # Then the lost one is built by the worker, and the other one failed saying why
    assert summary["requeued"]["images"] == [lost.pk]
    wait_until(lambda: DockerImage.objects.get(pk=lost.pk).state == ImageState.AVAILABLE, 240, "the re-enqueued build")
    spent.refresh_from_db()
    assert spent.state == ImageState.FAILED
    limit = settings.STALLED_REQUEUE_LIMIT
    assert spent.failure_reason.startswith(f"no progress for 45 minutes while queued; re-enqueued {limit} time(s)")
    assert_nothing_active()
