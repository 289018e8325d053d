"""The scheduled tag-immutability audit: every published tag must still point at its recorded digest.

``run_audit`` streams the published tags from the database in batches into
``releases.audit.audit_tags`` (concurrent HEADs with connection reuse) and turns the results into
``AuditFinding`` rows: opened when the registry disagrees, kept open across runs, resolved when it
agrees again. Each result is written on its own, so a crash mid-run leaves every finding as true
as the last run that checked it; the next run marks the crashed run and completes. Two audits
never overlap (a PostgreSQL advisory lock).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..audit import ExpectedTag, TagResult, TagStatus, audit_tags, latest_behind
from ..audit.model import normalize_platforms
from ..charts import oci_tag
from ..choices import MOVING_TAG, ImageState
from ..locks import AUDIT_LOCK, exclusive
from ..models import AuditFinding, AuditRun, DockerImage, HelmChart, ReleaseVersion, default_release_layout
from ..notifications import notify
from ..registry_client import registry_client, split_location
from .errors import time_limit_cause

logger = logging.getLogger(__name__)

Type, Severity = AuditFinding.Type, AuditFinding.Severity
SEVERITY = {Type.LATEST_BEHIND: Severity.WARNING}
# What one tag's result can say; a result closes the open findings of these types it no longer shows.
TAG_TYPES = (Type.MISMATCH, Type.MISSING, Type.PLATFORM_DRIFT, Type.UNREACHABLE)
LATEST_TYPES = (Type.LATEST_BEHIND, Type.UNREACHABLE)


class AuditAlreadyRunning(Exception):
    """Another audit holds the lock; this one did not start."""


def expected_tags(host: str, batch_size: int = 1000) -> Iterator[ExpectedTag]:
    """Published image version tags, chart versions and each image's ``latest``, read in batches."""
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").order_by("pk")
    fields = ("pk", "registry", "name", "tag", "digest", "platform_digests")
    for image in images.only(*fields).iterator(chunk_size=batch_size):
        yield ExpectedTag(
            f"image:{image.pk}", image.repository_path, image.tag, image.digest, "image", built_platforms(image)
        )
    charts = HelmChart.objects.indexed().filter(registry__startswith=f"{host}/").order_by("pk")
    for chart in charts.only("pk", "registry", "name", "chart_version", "digest").iterator(chunk_size=batch_size):
        yield ExpectedTag(
            f"chart:{chart.pk}",
            chart.repository_path,
            oci_tag(chart.chart_version),
            chart.digest,
            "chart",
        )
    for image in highest_published_images(host):
        yield ExpectedTag(f"latest:{image.pk}", image.repository_path, MOVING_TAG, image.digest, "image")


def built_platforms(image: DockerImage) -> frozenset[str]:
    """The platforms the image's index must list: those it was built for (``IMAGE_PLATFORMS`` when it
    was built), so changing the setting later does not turn every older image into drift."""
    recorded = image.platform_digests or {}
    return normalize_platforms(recorded or settings.IMAGE_PLATFORMS)


def highest_published_images(host: str) -> list[DockerImage]:
    """Per image repository, the highest published (non-pre-release) version: what ``latest`` must be."""
    highest: dict[str, DockerImage] = {}
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").exclude(tag__contains="-")
    for image in images.order_by("registry", "name", "-tag_order").only("pk", "registry", "name", "tag", "digest"):
        highest.setdefault(image.repository, image)
    return list(highest.values())


def findings_of(result: TagResult) -> list[tuple[str, str, str, str]]:
    """``(type, expected, actual, detail)`` of every problem one tag's result shows."""
    expected, actual = result.expected.digest, result.actual_digest or ""
    if result.expected.tag == MOVING_TAG and result.expected.key.startswith("latest:"):
        if result.status in (TagStatus.UNREACHABLE, TagStatus.ERROR):
            return [(Type.UNREACHABLE, expected, "", result.detail)]
        if result.ok:
            return []
        check = latest_behind(expected, result.actual_digest)
        return [(Type.LATEST_BEHIND, expected, actual, check.detail)]
    if result.status is TagStatus.OK:
        return []
    if result.status is TagStatus.MISSING:
        return [(Type.MISSING, expected, "", result.detail)]
    if result.status in (TagStatus.UNREACHABLE, TagStatus.ERROR):
        return [(Type.UNREACHABLE, expected, "", result.detail)]
    problems = [(Type.MISMATCH, expected, actual, result.detail)]
    if result.status is TagStatus.PLATFORM_DRIFT:
        live = ", ".join(sorted(result.live_platforms or ())) or "none"
        wanted = ", ".join(sorted(result.expected.platforms or ()))
        problems.append((Type.PLATFORM_DRIFT, wanted, live, result.detail))
    return problems


class FindingBook:
    """The open findings, in memory (they are few), so that the common "ok" result costs no query."""

    def __init__(self, run: AuditRun) -> None:
        self.run = run
        self.open: dict[tuple[str, str, str], AuditFinding] = {
            (f.type, f.repository, f.tag): f for f in AuditFinding.objects.open()
        }
        self.seen = Counter()
        self.new: list[AuditFinding] = []
        self.resolved = 0

    def record(
        self, repository: str, tag: str, checked_types: tuple[str, ...], problems, *, image_pk=None, chart_pk=None
    ) -> None:
        now = timezone.now()
        found = {problem[0] for problem in problems}
        for kind, expected, actual, detail in problems:
            self.seen[kind] += 1
            finding = self.open.get((kind, repository, tag))
            if finding is None:
                finding = AuditFinding.objects.create(
                    type=kind,
                    severity=SEVERITY.get(kind, Severity.CRITICAL),
                    repository=repository,
                    tag=tag,
                    artifact=f"{repository}:{tag}",
                    docker_image_id=image_pk,
                    helm_chart_id=chart_pk,
                    expected=expected,
                    actual=actual,
                    detail=detail,
                    last_seen=now,
                    first_run=self.run,
                    last_run=self.run,
                )
                self.open[(kind, repository, tag)] = finding
                self.new.append(finding)
            else:
                AuditFinding.objects.filter(pk=finding.pk).update(
                    last_seen=now, last_run=self.run, actual=actual, detail=detail
                )
        if Type.UNREACHABLE in found:
            checked_types = ()  # nothing else is known about an unreachable tag: its findings stay
        for kind in checked_types:
            finding = self.open.get((kind, repository, tag))
            if finding is not None and kind not in found:
                AuditFinding.objects.filter(pk=finding.pk).update(resolved_at=now, last_run=self.run)
                del self.open[(kind, repository, tag)]
                self.resolved += 1


def run_audit(*, triggered_by: str = "", on_progress: Callable[[int, int], None] | None = None) -> AuditRun:
    """One audit of every published tag; returns the finished ``AuditRun``.

    Refuses (``AuditAlreadyRunning``) to start while another audit runs.
    """
    with exclusive(AUDIT_LOCK, 0) as acquired:
        if not acquired:
            raise AuditAlreadyRunning("another audit is running; wait for it to finish")
        AuditRun.objects.filter(status=AuditRun.Status.RUNNING).update(
            status=AuditRun.Status.CRASHED, finished=timezone.now(), error="the audit stopped before it finished"
        )
        run = AuditRun.objects.create(triggered_by=triggered_by)
        try:
            _check_every_tag(run, on_progress)
        except Exception as error:
            # Recorded now, not by the next audit: a crash (or the time limit) is visible at once.
            AuditRun.objects.filter(pk=run.pk, status=AuditRun.Status.RUNNING).update(
                status=AuditRun.Status.CRASHED, finished=timezone.now(), error=crash_reason(error)
            )
            raise
    notify(AuditFinding.objects.open().filter(notified_at__isnull=True))
    return run


def crash_reason(error: BaseException) -> str:
    if time_limit_cause(error) is not None:
        return (
            f"the audit exceeded its {settings.AUDIT_TIME_LIMIT_SECONDS} s time limit (AUDIT_TIME_LIMIT_SECONDS); "
            "the registry is slow or there are many tags: raise AUDIT_TIME_LIMIT_SECONDS or AUDIT_CONCURRENCY"
        )
    return f"unexpected {type(error).__name__}: {error} (the traceback is in the worker log)"


def _check_every_tag(run: AuditRun, on_progress: Callable[[int, int], None] | None) -> None:
    book = FindingBook(run)
    latest_tags = (
        DockerImage.objects.immutable_tags().exclude(tag__contains="-").values("registry", "name").distinct().count()
    )
    total = DockerImage.objects.immutable_tags().count() + HelmChart.objects.indexed().count() + latest_tags
    checked = 0
    unavailable_versions: set[str] = set()
    for host in registry_hosts():
        with registry_client(host) as client:
            for result in audit_tags(client, expected_tags(host), concurrency=settings.AUDIT_CONCURRENCY):
                checked += 1
                problems = findings_of(result)
                kind, _, pk = result.expected.key.partition(":")
                checked_types = LATEST_TYPES if kind == "latest" else TAG_TYPES
                book.record(
                    result.expected.repository,
                    result.expected.tag,
                    checked_types,
                    problems,
                    image_pk=int(pk) if kind == "image" else None,
                    chart_pk=int(pk) if kind == "chart" else None,
                )
                if kind == "image" and any(p[0] != Type.UNREACHABLE for p in problems):
                    unavailable_versions.add(result.expected.tag)
                if on_progress:
                    on_progress(checked, total)
    check_chart_app_versions(book, unavailable_versions)
    with transaction.atomic():
        run.finished = timezone.now()
        run.status = AuditRun.Status.SUCCEEDED
        run.tags_checked = checked
        run.findings_by_type = dict(Counter(f.type for f in book.open.values()))
        run.new_findings = len(book.new)
        run.resolved_findings = book.resolved
        run.save()


def registry_hosts() -> list[str]:
    hosts = {split_location(r)[0] for r in DockerImage.objects.immutable_tags().values_list("registry", flat=True)}
    hosts |= {split_location(r)[0] for r in HelmChart.objects.indexed().values_list("registry", flat=True)}
    return sorted(hosts)


def check_chart_app_versions(book: FindingBook, broken_versions: set[str]) -> None:
    """A published chart's appVersion must still resolve to available images with the recorded digests."""
    # Each release names its images in its own layout; a chart needs those of its appVersion.
    names_by_version = {
        release.version: list(release.image_names().values())
        for release in ReleaseVersion.objects.only("pk", "version", "layout")
    }
    default_names = list(default_release_layout().names().values())
    every_name = set(default_names).union(*names_by_version.values())
    available = set(
        DockerImage.objects.filter(state=ImageState.AVAILABLE, name__in=every_name).values_list("name", "tag")
    )
    for chart in HelmChart.objects.indexed().only("pk", "registry", "name", "chart_version", "app_version"):
        repository = chart.repository_path
        names = names_by_version.get(chart.app_version, default_names)
        missing = [name for name in names if (name, chart.app_version) not in available]
        problems = []
        if missing or chart.app_version in broken_versions:
            why = (
                f"images {', '.join(missing)} are not available"
                if missing
                else "an image of this version no longer has its recorded digest in the registry"
            )
            problems.append(
                (Type.CHART_APP_VERSION_BROKEN, chart.app_version, "", f"appVersion {chart.app_version}: {why}")
            )
        book.record(
            repository, oci_tag(chart.chart_version), (Type.CHART_APP_VERSION_BROKEN,), problems, chart_pk=chart.pk
        )
