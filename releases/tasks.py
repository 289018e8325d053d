"""Celery tasks. They take primary keys, are safe to run twice, and retry only transient errors.

A release is published by ``orchestrate_release``: both image builds run in parallel (a group)
and a chord calls ``images_finished`` when both are done; it starts the chart pipeline only when
both images are available, and ``finish_release`` marks the release published.
"""

from __future__ import annotations

from celery import chain, chord, shared_task

from . import audit_runs, chart_pipeline, image_pipeline
from .choices import ChartState, ImageState, ReleaseState
from .models import ReleaseVersion
from .services import TransitionRefused, fire_transition
from .workers import PipelineBusy

# A task whose row another worker is processing comes back this much later (and again, until done).
BUSY_RETRY_SECONDS = 5


def _drive(task, run, transient: tuple[type[Exception], ...], give_up, attempt: int) -> str:
    """Run a pipeline step for ``task``: a busy row comes back later (no limit: the other worker
    will finish); a transient error is retried with backoff ``max_retries`` times, counted in
    ``attempt`` so busy retries never use up that budget; then ``give_up`` records the reason."""
    try:
        return run()
    except PipelineBusy as busy:
        raise task.retry(exc=busy, countdown=BUSY_RETRY_SECONDS, max_retries=None) from busy
    except transient as error:
        if attempt >= task.max_retries:
            give_up(f"{error} (gave up after {task.max_retries} retries)")
            return "failed"
        raise task.retry(
            exc=error, countdown=min(2**attempt * 5, 60), max_retries=None, kwargs={"attempt": attempt + 1}
        ) from error


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def build_image(self, image_pk: int, attempt: int = 0) -> str:
    """Take a ``DockerImage`` from where its state says to ``available`` (or ``failed``).

    Retries the engine or registry being unreachable, with backoff, ``max_retries`` times; then
    the image fails saying which service was unreachable and what to check.
    """
    task = f"build_image[{self.request.id}]"
    return _drive(
        self,
        lambda: image_pipeline.run_image_pipeline(image_pk, task=task),
        image_pipeline.TRANSIENT_ERRORS,
        lambda reason: image_pipeline.fail_image(image_pk, reason, task=task),
        attempt,
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def publish_chart(self, chart_pk: int, attempt: int = 0) -> str:
    """Take a ``HelmChart`` from ``validating`` to ``indexed`` (or ``invalid`` with every problem)."""
    task = f"publish_chart[{self.request.id}]"
    return _drive(
        self,
        lambda: chart_pipeline.run_chart_pipeline(chart_pk, task=task),
        chart_pipeline.TRANSIENT_ERRORS,
        lambda reason: chart_pipeline.reject_chart(chart_pk, [reason], task=task),
        attempt,
    )


@shared_task(bind=True, acks_late=True)
def orchestrate_release(self, release_pk: int) -> str:
    """pending -> building, then build both images in parallel; the chord continues the release."""
    task = f"orchestrate_release[{self.request.id}]"
    release = ReleaseVersion.objects.filter(pk=release_pk).first()
    if release is None or release.state not in (ReleaseState.PENDING, ReleaseState.BUILDING):
        return release.state if release else "gone"
    if release.state == ReleaseState.PENDING:
        release = fire_transition(ReleaseVersion, release_pk, "start_build", task=task)
    image_pks = list(release.images().values_list("pk", flat=True))
    chord((build_image.si(pk) for pk in image_pks), images_finished.si(release_pk)).delay()
    return release.state


@shared_task(bind=True, acks_late=True)
def images_finished(self, release_pk: int) -> str:
    """Both image builds ended: fail the release naming a failed image, or publish the chart."""
    task = f"images_finished[{self.request.id}]"
    release = ReleaseVersion.objects.get(pk=release_pk)
    if release.state != ReleaseState.BUILDING:
        return release.state
    images = list(release.images())
    failed = [image for image in images if image.state == ImageState.FAILED]
    if failed:
        names = ", ".join(image.name for image in failed)
        reasons = "; ".join(f"{image.name}: {image.failure_reason}" for image in failed)
        fire_transition(
            ReleaseVersion, release_pk, "fail", task=task, reason=f"image build failed: {reasons}", artifact=names
        )
        return ReleaseState.FAILED
    try:
        release = fire_transition(ReleaseVersion, release_pk, "start_publishing", task=task)
    except TransitionRefused:
        return release.state  # an image is still in progress: another chord will call again
    chart = release.charts().get()
    chain(publish_chart.si(chart.pk), finish_release.si(release_pk)).delay()
    return release.state


@shared_task(bind=True, acks_late=True)
def finish_release(self, release_pk: int) -> str:
    """The chart pipeline ended: publish the release, or fail it with the chart's problems."""
    task = f"finish_release[{self.request.id}]"
    release = ReleaseVersion.objects.get(pk=release_pk)
    if release.state != ReleaseState.PUBLISHING:
        return release.state
    chart = release.charts().get()
    if chart.state == ChartState.INDEXED:
        return fire_transition(ReleaseVersion, release_pk, "mark_published", task=task).state
    problems = "; ".join(chart.problems) or f"the chart is {chart.state}"
    fire_transition(
        ReleaseVersion, release_pk, "fail", task=task, reason=f"chart {chart}: {problems}", artifact=str(chart)
    )
    return ReleaseState.FAILED


@shared_task(bind=True, acks_late=True)
def audit_published_tags(self, triggered_by: str = "beat") -> dict:
    """Run the tag-immutability audit (scheduled by beat; also started from the admin and the API)."""
    try:
        run = audit_runs.run_audit(triggered_by=triggered_by)
    except audit_runs.AuditAlreadyRunning as error:
        return {"skipped": str(error)}
    return {"run": run.pk, "tags_checked": run.tags_checked, "open": run.findings_by_type, "new": run.new_findings}
