"""A release from ``pending`` to ``published``: its images in parallel, then its chart.

The Celery tasks in ``releases.tasks`` call these steps and enqueue what comes next; each step
reads the row, does nothing when the release has moved on (a redelivered task is harmless), and
returns what the task must do next. A release that fails takes its unfinished images and chart
with it (``fail_unfinished``), so nothing it started is left waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..choices import ChartState, ImageState, ReleaseState
from ..models import ReleaseVersion
from ..transitions import TransitionRefused, fire_transition
from .charts import reject_chart
from .images import fail_image
from .progress import stage_of


@dataclass(frozen=True)
class NextStep:
    """What a release needs enqueued to move on: its image builds, or its chart then the finish."""

    images: list[int] = field(default_factory=list)
    chart: int | None = None


def next_step(release_pk: int, *, task: str = "") -> NextStep:
    """Resume a release from its state: ``pending -> building`` and its images; the chart of a
    ``publishing`` one; nothing for a release that is not active (or gone)."""
    release = ReleaseVersion.objects.filter(pk=release_pk).first()
    if release is None or not release.is_active:
        return NextStep()
    if release.state == ReleaseState.PUBLISHING:
        chart = release.charts().first()
        return NextStep(chart=chart.pk if chart else None)
    return NextStep(images=start_building(release_pk, task=task))


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
        fail_release(release_pk, f"image build failed: {reasons}", artifact=names, task=task)
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
    fail_release(release_pk, f"chart {chart}: {problems}", artifact=str(chart), task=task)
    return ReleaseState.FAILED


def fail_release(release_pk: int, reason: str, *, artifact: str = "", task: str = "") -> bool:
    """Fail an active release with ``reason`` naming ``artifact``, and end its unfinished images and
    chart with it (a retry of the release queues them again). False when it was not active."""
    release = ReleaseVersion.objects.filter(pk=release_pk).first()
    if release is None or not release.is_active:
        return False
    try:
        fire_transition(ReleaseVersion, release_pk, "fail", task=task, reason=reason, artifact=artifact[:255])
    except TransitionRefused:
        return False  # another worker (or a person) ended it first
    stopped = f"release {release} failed before this finished ({reason}); retry the release to resume"
    for image in release.images().active():
        fail_image(image.pk, stopped, task=task)
    for chart in release.charts().active():
        reject_chart(chart.pk, [stopped], task=task)
    return True


def fail_unfinished(release_pk: int, error: str, *, task: str = "") -> bool:
    """A task of the release ended without recording an outcome (it died, was killed at its hard
    time limit, or raised past its own handler): its active images and chart fail with ``error``,
    and the release fails naming every failed artifact. False when the release was not active."""
    release = ReleaseVersion.objects.filter(pk=release_pk).first()
    if release is None or not release.is_active:
        return False
    for image in release.images().active():
        fail_image(image.pk, f"ended without a result at {stage_of(type(image), image.pk)}: {error}", task=task)
    if release.state == ReleaseState.PUBLISHING:
        for chart in release.charts().active():
            reject_chart(chart.pk, [f"ended without a result at {stage_of(type(chart), chart.pk)}: {error}"], task=task)
    broken = [f"{image.name}: {image.failure_reason}" for image in release.images().filter(state=ImageState.FAILED)]
    broken += [
        f"chart {chart}: {'; '.join(chart.problems)}" for chart in release.charts().filter(state=ChartState.INVALID)
    ]
    names = [item.partition(": ")[0] for item in broken]
    reason = "; ".join(broken) if broken else error
    return fail_release(release_pk, reason, artifact=", ".join(names) or "the release's tasks", task=task)


def describe_stage(release: ReleaseVersion) -> str:
    """The release's state and where its unfinished images and chart are, for a failure reason."""
    children = [f"{image.name}:{image.tag} {stage_of(type(image), image.pk)}" for image in release.images().active()]
    if release.state == ReleaseState.PUBLISHING:
        children += [
            f"chart {chart.chart_version} {stage_of(type(chart), chart.pk)}" for chart in release.charts().active()
        ]
    return f"{release.state} ({', '.join(children)})" if children else release.state
