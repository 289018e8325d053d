"""Celery tasks. They take primary keys, are safe to run twice, and retry only transient errors.

A release is published by ``orchestrate_release``: both image builds run in parallel (a group)
and a chord calls ``images_finished`` when both are done; it starts the chart pipeline only when
both images are available, and ``finish_release`` marks the release published.
"""

from __future__ import annotations

from celery import chain, chord, shared_task

from .pipelines import audit, releases
from .pipelines import charts as chart_pipeline
from .pipelines import images as image_pipeline
from .pipelines.errors import PipelineBusy

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
    """pending -> building, then build every image in parallel; the chord continues the release."""
    image_pks = releases.start_building(release_pk, task=f"orchestrate_release[{self.request.id}]")
    if not image_pks:
        return "nothing to build"
    chord((build_image.si(pk) for pk in image_pks), images_finished.si(release_pk)).delay()
    return f"building {len(image_pks)} image(s)"


@shared_task(bind=True, acks_late=True)
def images_finished(self, release_pk: int) -> str:
    """Every image build ended: the release fails naming a failed image, or its chart is published."""
    chart_pk = releases.images_finished(release_pk, task=f"images_finished[{self.request.id}]")
    if chart_pk is None:
        return "no chart to publish"
    chain(publish_chart.si(chart_pk), finish_release.si(release_pk)).delay()
    return f"publishing chart {chart_pk}"


@shared_task(bind=True, acks_late=True)
def finish_release(self, release_pk: int) -> str:
    """The chart pipeline ended: publish the release, or fail it with the chart's problems."""
    return releases.finish_release(release_pk, task=f"finish_release[{self.request.id}]")


@shared_task(bind=True, acks_late=True)
def audit_published_tags(self, triggered_by: str = "beat") -> dict:
    """Run the tag-immutability audit (scheduled by beat; also started from the admin and the API)."""
    try:
        run = audit.run_audit(triggered_by=triggered_by)
    except audit.AuditAlreadyRunning as error:
        return {"skipped": str(error)}
    return {"run": run.pk, "tags_checked": run.tags_checked, "open": run.findings_by_type, "new": run.new_findings}
