"""What an audit finds: the finding types by check, the findings a tag's result opens, and the book
that opens, keeps and resolves ``AuditFinding`` rows (plus the chart appVersion check)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from releases.audit import TagResult, TagStatus, latest_behind
from releases.audit.model import normalize_platforms
from releases.charts import oci_tag
from releases.choices import MOVING_TAG, ImageState
from releases.models import AuditFinding, AuditRun, DockerImage, HelmChart, ReleaseVersion, default_release_layout

logger = logging.getLogger(__name__)

Type, Severity = AuditFinding.Type, AuditFinding.Severity


SEVERITY = {Type.LATEST_BEHIND: Severity.WARNING}


# What one tag's result can say; a result closes the open findings of these types it no longer shows.
TAG_TYPES = (Type.MISMATCH, Type.MISSING, Type.PLATFORM_DRIFT, Type.UNREACHABLE)


LATEST_TYPES = (Type.LATEST_BEHIND, Type.UNREACHABLE)


SIGNATURE_TYPES = (Type.SIGNATURE_MISSING, Type.SIGNATURE_INVALID)


ATTESTATION_TYPES = (Type.ATTESTATION_MISSING,)


def built_platforms(platform_digests: dict | None) -> frozenset[str]:
    """The platforms an image's index must list: those it was built for (its recorded
    ``platform_digests``; ``IMAGE_PLATFORMS`` when none were), so changing the setting later
    does not turn every older image into drift."""
    return normalize_platforms(platform_digests or settings.IMAGE_PLATFORMS)


def highest_published_images(host: str) -> list[tuple[int, str, str]]:
    """Per image repository, the highest published (non-pre-release) version, what ``latest`` must
    be: ``(pk, repository path, digest)``. Rows are read as values: no model instance per image."""
    highest: dict[tuple[str, str], tuple[int, str, str]] = {}
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").exclude(tag__contains="-")
    # A withdrawn release's images stay published (and audited) but are never what latest must be.
    images = images.exclude(tag__in=ReleaseVersion.objects.withdrawn().values("version"))
    rows = images.order_by("registry", "name", "-tag_order").values_list("pk", "registry", "name", "digest")
    for pk, registry, name, digest in rows.iterator(chunk_size=2000):
        if (registry, name) not in highest:
            highest[(registry, name)] = (pk, DockerImage.path_in_registry(registry, name), digest)
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
        self,
        repository: str,
        tag: str,
        checked_types: tuple[str, ...],
        problems,
        *,
        image_pk=None,
        chart_pk=None,
        artifact: str | None = None,
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
                    artifact=artifact or f"{repository}:{tag}",
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

    def any_open(self, repository: str, tag: str, types: Iterable[str]) -> bool:
        return any((kind, repository, tag) in self.open for kind in types)


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
    for chart in HelmChart.objects.indexed().only("pk", "state", "registry", "name", "chart_version", "app_version"):
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
