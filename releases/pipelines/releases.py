"""A release from ``pending`` to ``published``: its images in parallel, then its chart.

The Celery tasks in ``releases.tasks`` call these steps and enqueue what comes next; each step
reads the row, does nothing when the release has moved on (a redelivered task is harmless), and
returns what the task must do next.
"""

from __future__ import annotations

from ..choices import ChartState, ImageState, ReleaseState
from ..models import ReleaseVersion
from ..transitions import TransitionRefused, fire_transition


def start_building(release_pk: int, *, task: str = "") -> list[int]:
    """``pending -> building``; the primary keys of the images to build (none if the release moved on)."""
    release = ReleaseVersion.objects.filter(pk=release_pk).first()
    if release is None or release.state not in (ReleaseState.PENDING, ReleaseState.BUILDING):
        return []
    if release.state == ReleaseState.PENDING:
        release = fire_transition(ReleaseVersion, release_pk, "start_build", task=task)
    return list(release.images().values_list("pk", flat=True))


def images_finished(release_pk: int, *, task: str = "") -> int | None:
    """Every image build ended: fail the release naming each failed image, or ``building ->
    publishing`` and return the chart to publish. ``None`` when there is nothing to publish (yet)."""
    release = ReleaseVersion.objects.get(pk=release_pk)
    if release.state != ReleaseState.BUILDING:
        return None
    failed = [image for image in release.images() if image.state == ImageState.FAILED]
    if failed:
        names = ", ".join(image.name for image in failed)
        reasons = "; ".join(f"{image.name}: {image.failure_reason}" for image in failed)
        fire_transition(
            ReleaseVersion, release_pk, "fail", task=task, reason=f"image build failed: {reasons}", artifact=names
        )
        return None
    try:
        release = fire_transition(ReleaseVersion, release_pk, "start_publishing", task=task)
    except TransitionRefused:
        return None  # an image is still in progress: another chord will call again
    return release.charts().get().pk


def finish_release(release_pk: int, *, task: str = "") -> str:
    """The chart pipeline ended: publish the release, or fail it with the chart's problems."""
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
