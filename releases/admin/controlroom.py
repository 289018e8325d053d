"""What the admin's control room shows: the overview (recent releases, their images and chart, how
long each stage took, open audit findings, the next audit) and the live panels of a release and an
image. Read-only queries in a constant number per page, whatever the number of rows; the pictures
are drawn by ``releases.admin.pictures``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q
from django.utils import timezone

from releases.admin.pictures import (
    AuditPoint,
    SizePoint,
    StageBar,
    audit_history_svg,
    human_seconds,
    size_budget_svg,
    timeline_svg,
)
from releases.choices import IMAGE_NAME_BY_ARTIFACT_TYPE, ReleaseState
from releases.models import AuditFinding, AuditRun, DockerImage, HelmChart, ReleaseVersion, StateTransition
from releases.schedules import AUDIT_TASK_NAME

__all__ = [
    "ArtifactStatus",
    "ReleaseSummary",
    "image_panel",
    "next_audit",
    "overview",
    "release_panel",
    "signing_status",
]

IMAGE_NAMES = tuple(IMAGE_NAME_BY_ARTIFACT_TYPE.values())
RECENT_RELEASES = 12
AUDIT_HISTORY_RUNS = 30
OPEN_FINDINGS_SHOWN = 8
LOG_TAIL_LINES = 40

# Big columns the overview never reads.
RELEASE_DEFERRED = ("changelog", "release_notes", "parsed_changelog", "changelog_html")
IMAGE_DEFERRED = ("build_log", "scan_findings", "labels", "platform_digests")
CHART_DEFERRED = ("package", "values", "templates", "problems")


@dataclass
class ArtifactStatus:
    """An image or the chart of a release, as a row of the overview."""

    label: str
    row: DockerImage | HelmChart | None
    started: datetime | None = None
    finished: datetime | None = None

    @property
    def state(self) -> str:
        return self.row.state if self.row is not None else "not planned"

    @property
    def duration(self) -> str:
        if self.started is None:
            return ""
        end = self.finished or (timezone.now() if self.row is not None and self.row.is_active else None)
        return human_seconds((end - self.started).total_seconds()) if end else ""


@dataclass
class ReleaseSummary:
    """A release with its images, chart and recorded transitions: what a row of the overview and a
    release's live panel show."""

    release: ReleaseVersion
    images: list[DockerImage]
    chart: HelmChart | None
    transitions: dict[tuple[int, int], list[StateTransition]]
    content_types: dict[type, int]
    now: datetime = field(default_factory=timezone.now)

    def history(self, row: Any) -> list[StateTransition]:
        return self.transitions.get((self.content_types[type(row)], row.pk), [])

    @cached_property
    def started(self) -> datetime | None:
        submitted = [t.at for t in self.history(self.release) if t.transition in ("submit", "retry")]
        return submitted[0] if submitted else None

    @cached_property
    def finished(self) -> datetime | None:
        if self.release.is_active or self.started is None:
            return None
        history = self.history(self.release)
        return history[-1].at if history else None

    @property
    def duration(self) -> str:
        if self.started is None:
            return ""
        end = self.finished or self.now
        return human_seconds((end - self.started).total_seconds())

    @cached_property
    def artifacts(self) -> list[ArtifactStatus]:
        by_name = {image.name: image for image in self.images}
        rows: list[ArtifactStatus] = []
        for name in IMAGE_NAMES:
            image = by_name.get(name)
            rows.append(self._artifact(name.removeprefix("threek8s-"), image))
        rows.append(self._artifact("chart", self.chart))
        return rows

    def _artifact(self, label: str, row: Any) -> ArtifactStatus:
        if row is None:
            return ArtifactStatus(label, None)
        bars = self._bars(row, "")
        started = self._datetime(bars[0].start) if bars else None
        finished = None
        if not row.is_active:
            history = self.history(row)
            finished = history[-1].at if history else None
        return ArtifactStatus(label, row, started, finished)

    # Timeline ------------------------------------------------------------------------------
    @property
    def origin(self) -> datetime | None:
        return self.started

    def _seconds(self, moment: datetime) -> float:
        return max((moment - self.origin).total_seconds(), 0.0) if self.origin else 0.0

    def _datetime(self, seconds: float) -> datetime | None:
        return self.origin + timedelta(seconds=seconds) if self.origin else None

    def _first_stage_start(self, row: Any) -> datetime | None:
        """When the row's first state began to mean work: an image waits from its creation, the chart
        from the moment the release started publishing (it is planned long before)."""
        if isinstance(row, ReleaseVersion):
            return None
        if isinstance(row, HelmChart):
            publishing = [t.at for t in self.history(self.release) if t.target == ReleaseState.PUBLISHING]
            return max(publishing[0], row.created) if publishing else None
        return row.created

    def _bars(self, row: Any, lane: str) -> list[StageBar]:
        """One bar per active state the row went through: from the transition into it (or, for its
        first state, ``_first_stage_start``) to the next transition, or now while it is still there."""
        if self.origin is None:
            return []
        history = [t for t in self.history(row) if t.at >= self.origin]
        active = set(type(row).active_states)
        spans: list[tuple[str, datetime, datetime | None]] = []
        first_start = self._first_stage_start(row)
        first_state = history[0].source if history else row.state
        first_end = history[0].at if history else None
        # A chart rejected before the release ever published had not started: no first bar for it.
        if first_start is not None and first_state in active and (first_end is None or first_end >= first_start):
            spans.append((first_state, max(first_start, self.origin), first_end))
        for index, step in enumerate(history):
            if step.target in active:
                end = history[index + 1].at if index + 1 < len(history) else None
                spans.append((step.target, step.at, end))
        bars = []
        for stage, start, end in spans:
            running = end is None and row.is_active
            if end is None and not running:
                continue
            bars.append(StageBar(lane, stage, self._seconds(start), self._seconds(end or self.now), running))
        return bars

    def lanes(self) -> list[tuple[str, Any]]:
        lanes: list[tuple[str, Any]] = [(f"release {self.release.version}", self.release)]
        lanes += [(image.name, image) for image in sorted(self.images, key=lambda i: i.name)]
        if self.chart is not None:
            lanes.append((f"chart {self.chart.name}", self.chart))
        return lanes

    def timeline_svg(self) -> str:
        lanes = self.lanes()
        bars = [bar for lane, row in lanes for bar in self._bars(row, lane)]
        title = f"Release {self.release.version}: time per stage of the release, each image and the chart"
        return timeline_svg(bars, [lane for lane, _ in lanes], title)


def _content_types() -> dict[type, int]:
    models = ContentType.objects.get_for_models(ReleaseVersion, DockerImage, HelmChart)
    return {model: content_type.pk for model, content_type in models.items()}


def _transitions(content_types: dict[type, int], rows: Iterable[Any]) -> dict[tuple[int, int], list[StateTransition]]:
    """Every recorded transition of ``rows`` in one query, by (content type id, pk)."""
    wanted: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        wanted[content_types[type(row)]].append(row.pk)
    if not wanted:
        return {}
    condition = Q()
    for ct_id, pks in wanted.items():
        condition |= Q(content_type_id=ct_id, object_id__in=pks)
    history: dict[tuple[int, int], list[StateTransition]] = defaultdict(list)
    for step in StateTransition.objects.filter(condition).only(
        "content_type_id", "object_id", "transition", "source", "target", "at"
    ):
        history[(step.content_type_id, step.object_id)].append(step)
    return history


def summaries(releases: Sequence[ReleaseVersion], *, light: bool = True) -> list[ReleaseSummary]:
    """The releases with their images, charts and transitions, in three queries whatever their number."""
    versions = [release.version for release in releases]
    images = DockerImage.objects.filter(tag__in=versions, name__in=IMAGE_NAMES)
    charts = HelmChart.objects.filter(app_version__in=versions).order_by("created")
    if light:
        images, charts = images.defer(*IMAGE_DEFERRED), charts.defer(*CHART_DEFERRED)
    images_by_tag: dict[str, list[DockerImage]] = defaultdict(list)
    for image in images:
        images_by_tag[image.tag].append(image)
    chart_by_version: dict[str, HelmChart] = {}
    for chart in charts:
        chart_by_version[chart.app_version] = chart  # the newest chart of the version wins
    content_types = _content_types()
    rows: list[Any] = [*releases, *(i for group in images_by_tag.values() for i in group), *chart_by_version.values()]
    history = _transitions(content_types, rows)
    now = timezone.now()
    return [
        ReleaseSummary(
            release,
            images_by_tag.get(release.version, []),
            chart_by_version.get(release.version),
            history,
            content_types,
            now,
        )
        for release in releases
    ]


def next_audit() -> dict[str, Any]:
    """The beat schedule of the tag audit: when it last ran and when it runs next (last run +
    interval; "at the next beat tick" before its first run)."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.select_related("interval").filter(name=AUDIT_TASK_NAME).first()
    if task is None:
        return {"scheduled": False, "text": "not scheduled (no beat task named tag-immutability-audit)"}
    if not task.enabled:
        return {"scheduled": False, "text": "disabled in the beat schedule", "task": task}
    every = task.interval.schedule.run_every if task.interval else None
    last = task.last_run_at
    due = last + every if last and every else None
    if due is None:
        text = "at the next beat tick (never run by beat yet)"
    elif due <= timezone.now():
        text = "due now"
    else:
        text = f"{timezone.localtime(due):%Y-%m-%d %H:%M} (in {human_seconds((due - timezone.now()).total_seconds())})"
    return {"scheduled": True, "due": due, "last_run_at": last, "every": every, "text": text, "task": task}


def overview(limit: int = RECENT_RELEASES) -> dict[str, Any]:
    """Everything the admin's front page shows, in a constant number of queries."""
    releases = list(
        ReleaseVersion.objects.with_withdrawal().defer(*RELEASE_DEFERRED).order_by("-release_date", "-pk")[:limit]
    )
    withdrawn = list(
        ReleaseVersion.objects.withdrawn().only("pk", "version").order_by("-withdrawal_at")[:RECENT_RELEASES]
    )
    rows = summaries(releases)
    by_state = dict(ReleaseVersion.objects.order_by().values_list("state").annotate(count=Count("pk")))
    open_findings = AuditFinding.objects.open()
    severity_counts = dict(open_findings.order_by().values_list("severity").annotate(count=Count("pk")))
    runs = list(AuditRun.objects.only("started", "status", "tags_checked", "findings_by_type")[:AUDIT_HISTORY_RUNS])
    points = [
        AuditPoint(run.started, run.tags_checked, sum((run.findings_by_type or {}).values()), run.status)
        for run in reversed(runs)
    ]
    sizes = [
        SizePoint(summary.release.version, image.name, image.size)
        for summary in reversed(rows)
        for image in sorted(summary.images, key=lambda i: i.name)
    ]
    active = any(summary.release.is_active for summary in rows) or any(
        row.row is not None and row.row.is_active for summary in rows for row in summary.artifacts
    )
    return {
        "summaries": rows,
        "counts": [(state, label, by_state.get(state, 0)) for state, label in ReleaseState.choices],
        "total_releases": sum(by_state.values()),
        "open_findings": {
            "critical": severity_counts.get(AuditFinding.Severity.CRITICAL, 0),
            "warning": severity_counts.get(AuditFinding.Severity.WARNING, 0),
            "latest": list(open_findings.order_by("-last_seen")[:OPEN_FINDINGS_SHOWN]),
        },
        "withdrawn": withdrawn,
        "last_audit": runs[0] if runs else None,
        "next_audit": next_audit(),
        "audit_svg": audit_history_svg(points, "Audit history: tags checked and findings per run"),
        "sizes_svg": size_budget_svg(
            sizes,
            settings.IMAGE_SIZE_BUDGET_BYTES,
            "Image size per release against IMAGE_SIZE_BUDGET_BYTES",
        ),
        "active": active,
    }


def release_panel(release: ReleaseVersion) -> dict[str, Any]:
    """A release's live panel: its state, each artifact's state and step, the timeline."""
    summary = summaries([release])[0]
    active = release.is_active or any(a.row is not None and a.row.is_active for a in summary.artifacts)
    return {
        "summary": summary,
        "release": release,
        "withdrawal": release.current_withdrawal(),
        "timeline_svg": summary.timeline_svg(),
        "signing": signing_status([*summary.images, *([summary.chart] if summary.chart else [])]),
        "active": active,
    }


def image_panel(image: DockerImage) -> dict[str, Any]:
    """An image's live panel: state, step, the tail of its build log."""
    lines = image.build_log.splitlines()
    return {
        "image": image,
        "log_tail": "\n".join(lines[-LOG_TAIL_LINES:]),
        "log_lines": len(lines),
        "active": image.is_active,
    }


def signing_status(rows: Sequence[Any]) -> dict[str, Any]:
    """Signed or unsigned, from the rows' ``signed_with`` (the key id) where the deployment records it.
    Before that field exists every row reads "unsigned (signatures not recorded here)"."""
    if not rows:
        return {"signed": False, "text": "nothing to sign yet"}
    if not all(hasattr(row, "signed_with") for row in rows):
        return {"signed": False, "text": "unsigned (this registry does not record signatures yet)"}
    keys = {row.signed_with for row in rows}
    if "" in keys:
        unsigned = [str(row) for row in rows if not row.signed_with]
        return {"signed": False, "text": f"unsigned: {', '.join(unsigned)}"}
    return {"signed": True, "text": f"signed by key {', '.join(sorted(k[:16] for k in keys))}"}
