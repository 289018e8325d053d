"""The sweeper: active work whose last transition or progress report is older than
``STALLED_AFTER_MINUTES`` is resumed, or failed once resuming has not helped.

A task can vanish without a trace: its message lost with a broker, a chord whose callback is never
called, a worker killed at its hard time limit between two writes. Pipelines resume from the row's
state, so the remedy is to enqueue the work again; ``STALLED_REQUEUE_LIMIT`` times without a state
change, then the row fails with how long it made no progress and at which stage. An image or chart
of an active release is resumed through its release (a new chord, so the release does not wait on
the lost one), and failing it fails the release too. A chart whose release is still building its
images is waiting, not stalled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from releases.database.locks import SWEEP_LOCK, exclusive

from ..choices import ReleaseState
from ..models import DockerImage, HelmChart, ReleaseVersion, StatefulModel
from .charts import reject_chart
from .images import fail_image
from .progress import stage_of
from .releases import describe_stage, fail_release

SWEEPER = "sweep_stalled_work"


@dataclass
class SweepOutcome:
    """What the sweep decided: rows to enqueue again (by primary key) and what it failed."""

    releases: set[int] = field(default_factory=set)
    images: set[int] = field(default_factory=set)
    charts: set[int] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "requeued": {
                "releases": sorted(self.releases),
                "images": sorted(self.images),
                "charts": sorted(self.charts),
            },
            "failed": self.failed,
        }


def sweep(*, task: str = SWEEPER) -> SweepOutcome:
    """Find stalled releases, images and charts; count a re-enqueue on each or fail it. One sweep
    at a time (a second one returns at once with nothing to do)."""
    outcome = SweepOutcome()
    with exclusive(SWEEP_LOCK, 0) as acquired:
        if not acquired:
            return outcome
        for release in ReleaseVersion.objects.stalled():
            _settle(release, None, outcome, task)
        for image in DockerImage.objects.stalled():
            _settle(image, _active_release(image.tag), outcome, task)
        for chart in HelmChart.objects.stalled():
            release = _active_release(chart.app_version)
            if release is not None and release.state != ReleaseState.PUBLISHING:
                continue  # the chart waits for its release's images
            _settle(chart, release, outcome, task)
    return outcome


def _active_release(version: str) -> ReleaseVersion | None:
    return ReleaseVersion.objects.active().filter(version=version).first()


def _settle(row: StatefulModel, release: ReleaseVersion | None, outcome: SweepOutcome, task: str) -> None:
    row.refresh_from_db()
    if row.stalled_since is None:
        return  # it moved (or ended) since the query, perhaps through its release just now
    if row.stall_requeues >= settings.STALLED_REQUEUE_LIMIT:
        _fail(row, release, outcome, task)
        return
    # Counted only if nobody touched the row since it was read; the new window starts now.
    counted = (
        type(row)
        .objects.filter(
            pk=row.pk, state=row.state, last_progress_at=row.last_progress_at, stall_requeues=row.stall_requeues
        )
        .update(stall_requeues=F("stall_requeues") + 1, last_progress_at=timezone.now())
    )
    if not counted:
        return
    if isinstance(row, ReleaseVersion):
        outcome.releases.add(row.pk)
    elif release is not None:
        outcome.releases.add(release.pk)
    elif isinstance(row, DockerImage):
        outcome.images.add(row.pk)
    else:
        outcome.charts.add(row.pk)


def _fail(row: StatefulModel, release: ReleaseVersion | None, outcome: SweepOutcome, task: str) -> None:
    minutes = int((timezone.now() - row.last_progress_at).total_seconds() // 60)
    stage = describe_stage(row) if isinstance(row, ReleaseVersion) else stage_of(type(row), row.pk)
    reason = (
        f"no progress for {minutes} minutes while {stage}; re-enqueued {row.stall_requeues} time(s) without a "
        "state change. Check that a Celery worker is running and can reach the Docker engine and the registry "
        "(its log names the task), then retry"
    )
    if isinstance(row, ReleaseVersion):
        ended = fail_release(row.pk, reason, artifact=_stalled_children(row), task=task)
    elif isinstance(row, DockerImage):
        ended = fail_image(row.pk, reason, task=task)
    else:
        ended = reject_chart(row.pk, [reason], task=task)
    if ended:
        outcome.failed.append(f"{row._meta.model_name} {row}: {reason}")
    if ended and release is not None:
        fail_release(release.pk, f"{row}: {reason}", artifact=str(row), task=task)


def _stalled_children(release: ReleaseVersion) -> str:
    names = [image.name for image in release.images().active()]
    if release.state == ReleaseState.PUBLISHING:
        names += [str(chart) for chart in release.charts().active()]
    return ", ".join(names)
