"""No stuck work, without a worker process: the sweeper's decisions, progress tracking, an
orchestration step that raises, and where a person sees stalled work (admin, API).

The worker-process versions (a push raising ValueError, a soft and a hard time limit, a re-enqueued
image built for real) are in ``tests/e2e/test_stuck_work.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from releases.choices import ChartState, ImageState, ReleaseState
from releases.models import DockerImage, HelmChart, ReleaseVersion
from releases.pipelines import stalled
from releases.pipelines.images import report_progress
from releases.tasks import images_finished
from releases.transitions import fire_transition
from tests.fixtures.factories import make_chart, make_image, make_release

pytestmark = pytest.mark.django_db


def assert_nothing_active() -> None:
    """The promise of every test here: no row is left waiting in an active state."""
    active = [
        *(f"release {r} {r.state}" for r in ReleaseVersion.objects.active()),
        *(f"image {i} {i.state}" for i in DockerImage.objects.active()),
        *(f"chart {c} {c.state}" for c in HelmChart.objects.active()),
    ]
    assert active == []


def age(row, minutes: int) -> None:
    """Pretend the row last moved ``minutes`` ago."""
    type(row).objects.filter(pk=row.pk).update(last_progress_at=timezone.now() - timedelta(minutes=minutes))


def building_release(version: str = "1.0.0") -> tuple[ReleaseVersion, DockerImage, DockerImage, HelmChart]:
    """A release whose orchestration started (building) and whose images are still queued."""
    release = make_release(version)
    frontend = make_image("threek8s-frontend", version)
    backend = make_image("threek8s-backend", version)
    chart = make_chart(version)
    fire_transition(ReleaseVersion, release.pk, "submit")
    fire_transition(ReleaseVersion, release.pk, "start_build")
    return release, frontend, backend, chart


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.STALLED_AFTER_MINUTES = 30
    settings.STALLED_REQUEUE_LIMIT = 2


def test_a_stalled_release_is_resumed_through_its_release_then_failed_naming_the_stage(settings):
    # Given a release in building whose chord was lost: nothing moved for 45 minutes
    release, frontend, backend, chart = building_release()
    for row in (release, frontend, backend, chart):
        age(row, 45)

    # When the sweeper runs, the release is re-enqueued (a new chord), once per stalled row
    outcome = stalled.sweep()
    assert outcome.releases == {release.pk} and outcome.images == set() and outcome.charts == set()
    assert outcome.failed == []
    release.refresh_from_db()
    assert release.state == ReleaseState.BUILDING and release.stall_requeues == 1
    assert release.stalled_since is None  # a new window started with the re-enqueue

    # When it stays stalled past its budget
    ReleaseVersion.objects.filter(pk=release.pk).update(stall_requeues=settings.STALLED_REQUEUE_LIMIT)
    for row in (release, frontend, backend):
        age(row, 45)
    DockerImage.objects.filter(pk__in=[frontend.pk, backend.pk]).update(stall_requeues=2)
    outcome = stalled.sweep()

    # Then the release fails naming how long and where, and takes its images and chart with it
    release.refresh_from_db()
    assert release.state == ReleaseState.FAILED
    assert release.failure_reason.startswith("no progress for 45 minutes while building (")
    assert "threek8s-frontend:1.0.0 queued" in release.failure_reason
    assert "re-enqueued 2 time(s)" in release.failure_reason
    assert release.failed_artifact == "threek8s-backend, threek8s-frontend"
    for image in (frontend, backend):
        image.refresh_from_db()
        assert image.state == ImageState.FAILED
        assert "no progress for 45 minutes" in image.failure_reason
    chart.refresh_from_db()
    assert chart.state == ChartState.INVALID and "release 1.0.0 failed" in chart.problems[0]
    assert outcome.releases == set()
    assert_nothing_active()


def test_a_stale_standalone_image_is_requeued_and_one_past_its_budget_fails(settings):
    # Given two images retried by hand (their releases are not active), both silent for 40 minutes
    make_release("1.0.0")
    make_release("1.0.1")
    fresh = make_image(tag="1.0.0")
    spent = make_image(tag="1.0.1", state=ImageState.PUSHING, progress="pushing linux/arm64")
    DockerImage.objects.filter(pk=spent.pk).update(stall_requeues=settings.STALLED_REQUEUE_LIMIT)
    age(fresh, 40)
    age(spent, 40)

    outcome = stalled.sweep()

    assert outcome.images == {fresh.pk}
    fresh.refresh_from_db()
    spent.refresh_from_db()
    assert fresh.state == ImageState.QUEUED and fresh.stall_requeues == 1
    assert spent.state == ImageState.FAILED
    assert spent.failure_reason.startswith(
        "no progress for 40 minutes while pushing (pushing linux/arm64); re-enqueued 2 time(s)"
    )
    assert "Check that a Celery worker is running" in spent.failure_reason
    # The re-enqueued one is not a candidate again until a whole window passes
    assert stalled.sweep().images == set()
    fire_transition(DockerImage, fresh.pk, "fail", reason="test cleanup")
    assert_nothing_active()


def test_a_chart_waiting_for_its_release_images_is_not_stalled():
    # Given a release building its images for an hour (progressing), its chart untouched since planning
    release, frontend, backend, chart = building_release()
    age(chart, 60)

    outcome = stalled.sweep()

    assert (outcome.releases, outcome.images, outcome.charts, outcome.failed) == (set(), set(), set(), [])
    chart.refresh_from_db()
    assert chart.state == ChartState.VALIDATING and chart.stall_requeues == 0
    fire_transition(ReleaseVersion, release.pk, "fail", reason="test cleanup")
    for image in (frontend, backend):
        fire_transition(DockerImage, image.pk, "fail", reason="test cleanup")
    fire_transition(HelmChart, chart.pk, "reject", reason="test cleanup", problems=["test cleanup"])
    assert_nothing_active()


def test_progress_reports_and_transitions_move_the_row_and_its_release():
    release, frontend, backend, chart = building_release()
    for row in (release, frontend, backend):
        age(row, 50)

    report_progress(backend.pk, "building linux/amd64 (1/2)")

    backend.refresh_from_db()
    release.refresh_from_db()
    frontend.refresh_from_db()
    assert timezone.now() - backend.last_progress_at < timedelta(seconds=5)
    assert timezone.now() - release.last_progress_at < timedelta(seconds=5)  # its release is alive too
    assert frontend.stalled_since is not None
    DockerImage.objects.filter(pk=frontend.pk).update(stall_requeues=1)
    moved = fire_transition(DockerImage, frontend.pk, "start_build")
    assert moved.stall_requeues == 0 and moved.stalled_since is None
    fire_transition(ReleaseVersion, release.pk, "fail", reason="test cleanup")
    for image in (frontend, backend):
        fire_transition(DockerImage, image.pk, "fail", reason="test cleanup")
    fire_transition(HelmChart, chart.pk, "reject", reason="test cleanup", problems=["test cleanup"])
    assert_nothing_active()


def test_an_orchestration_step_that_raises_fails_the_release_naming_the_exception():
    # Given a release whose images are available but whose chart row is missing (images_finished
    # then raises HelmChart.DoesNotExist: before, the release stayed "publishing" for ever)
    release = make_release()
    make_image("threek8s-frontend", state=ImageState.AVAILABLE)
    make_image("threek8s-backend", state=ImageState.AVAILABLE)
    chart = make_chart()
    fire_transition(ReleaseVersion, release.pk, "submit")
    fire_transition(ReleaseVersion, release.pk, "start_build")
    HelmChart.objects.filter(pk=chart.pk).delete()

    assert images_finished.apply(args=[release.pk]).get() == "failed"

    release.refresh_from_db()
    assert release.state == ReleaseState.FAILED
    assert release.failure_reason.startswith("images_finished raised unexpected DoesNotExist: HelmChart matching")
    assert "the traceback is in the worker log" in release.failure_reason
    assert_nothing_active()


def test_the_sweeper_is_scheduled_after_migrate(settings):
    from django.apps import apps
    from django_celery_beat.models import PeriodicTask

    from releases.schedules import SWEEP_TASK_NAME, schedule_stalled_work_sweep

    PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).delete()
    settings.SWEEP_INTERVAL_MINUTES = 7
    schedule_stalled_work_sweep(sender=apps.get_app_config("releases"))

    task = PeriodicTask.objects.get(name=SWEEP_TASK_NAME)
    assert task.task == "releases.tasks.sweep_stalled_work"
    assert (task.interval.every, task.interval.period) == (7, "minutes")


def test_stalled_work_is_visible_in_the_api_and_the_admin(client):
    # Given an image stalled for 50 minutes and a release building that is fine
    release, frontend, backend, chart = building_release()
    age(backend, 50)
    api = APIClient()

    images = api.get("/api/v1/images/", {"stalled": "true"}).json()["results"]
    detail = api.get("/api/v1/releases/1.0.0/").json()

    assert [(i["name"], i["state"]) for i in images] == [("threek8s-backend", "queued")]
    assert images[0]["stalled_since"] is not None and images[0]["last_progress_at"] == images[0]["stalled_since"]
    assert detail["stalled_since"] is None and detail["last_progress_at"]
    charts = api.get("/api/v1/charts/").json()["results"]
    assert charts[0]["stalled_since"] is None

    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    page = client.get("/admin/releases/dockerimage/", {"stalled": "yes"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 docker image" in text  # the frontend image is moving: filtered out
    assert text.count('class="field-stalled">since ') == 1 and "(50 min)" in text
    assert client.get("/admin/releases/releaseversion/", {"stalled": "no"}).status_code == 200
    assert client.get("/admin/releases/helmchart/", {"stalled": "yes"}).status_code == 200

    fire_transition(ReleaseVersion, release.pk, "fail", reason="test cleanup")
    for image in (frontend, backend):
        fire_transition(DockerImage, image.pk, "fail", reason="test cleanup")
    fire_transition(HelmChart, chart.pk, "reject", reason="test cleanup", problems=["test cleanup"])
    assert_nothing_active()
