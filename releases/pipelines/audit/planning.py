"""Starting a run and planning its batches: one run at a time (advisory lock, the running row),
and the primary-key ranges of published images and indexed charts per registry host, their
``latest`` tags and their signatures."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from releases.adapters.registry_client import split_location
from releases.adapters.signing_keys import signing_configured
from releases.audit import ExpectedTag
from releases.charts import oci_tag
from releases.choices import MOVING_TAG
from releases.database.locks import AUDIT_LOCK, exclusive
from releases.models import AuditRun, DockerImage, HelmChart
from releases.pipelines.audit.findings import built_platforms, highest_published_images

logger = logging.getLogger(__name__)


#: The kind of a signatures batch: ``<owner>-signatures`` for a range of rows; ``signatures`` for a
#: whole host (planned before the ranges were; still checked when such a batch is delivered).
SIGNATURES = "-signatures"


HOST_SIGNATURES = "signatures"


class AuditAlreadyRunning(Exception):
    """Another audit holds the lock; this one did not start."""


def stale_after_seconds() -> int:
    """A running audit with no progress for longer than this is dead: no batch can run longer
    than its hard time limit, and a running batch reports progress every ``HEARTBEAT_EVERY`` tags."""
    return settings.AUDIT_TIME_LIMIT_SECONDS + settings.TIME_LIMIT_GRACE_SECONDS


def start_run(*, triggered_by: str = "") -> AuditRun:
    """Open a new ``AuditRun``, closing a dead one first; ``AuditAlreadyRunning`` while one is alive.

    The advisory lock serialises the starts (two beats, the admin and the API at once); the run
    row itself is the lock for the run's duration: at most one is ``running`` (a database
    constraint), and it is alive while its batches report progress.
    """
    with exclusive(AUDIT_LOCK, 0) as acquired:
        if not acquired:
            raise AuditAlreadyRunning("another audit is starting; wait for it to finish")
        now = timezone.now()
        limit = stale_after_seconds()
        for running in AuditRun.objects.filter(status=AuditRun.Status.RUNNING):
            last = running.heartbeat_at or running.started
            silent = (now - last).total_seconds()
            if silent <= limit:
                raise AuditAlreadyRunning(
                    f"audit {running.pk} is running (last progress {silent:.0f} s ago); wait for it to finish"
                )
            AuditRun.objects.filter(pk=running.pk, status=AuditRun.Status.RUNNING).update(
                status=AuditRun.Status.CRASHED,
                finished=now,
                error=f"the audit stopped before it finished (no progress for {silent:.0f} s; its worker was lost)",
            )
        try:
            with transaction.atomic():
                return AuditRun.objects.create(triggered_by=triggered_by, heartbeat_at=now)
        except IntegrityError:
            raise AuditAlreadyRunning("another audit is running; wait for it to finish") from None


@dataclass(frozen=True)
class Shard:
    """One batch of a run's tags: a primary-key range of published images or indexed charts on one
    registry host, or the host's ``latest`` tags. Small enough for a task message; the tags are
    streamed from the database by the worker that checks them."""

    kind: str  # "image", "chart", "latest", "image-signatures", "chart-signatures" (or "signatures")
    host: str
    first: int = 0
    last: int = 0

    def as_dict(self) -> dict:
        return {"kind": self.kind, "host": self.host, "first": self.first, "last": self.last}

    @classmethod
    def from_dict(cls, data: dict) -> Shard:
        return cls(data["kind"], data["host"], int(data.get("first", 0)), int(data.get("last", 0)))

    def expected_tags(self, batch_size: int = 1000) -> Iterator[ExpectedTag]:
        # Rows are read as values, not model instances: building one costs more than its HEAD.
        path = DockerImage.path_in_registry
        if self.kind == "latest":
            for pk, repository, digest in highest_published_images(self.host):
                yield ExpectedTag(f"latest:{pk}", repository, MOVING_TAG, digest, "image")
            return
        if self.kind == "image":
            images = _published_images(self.host).filter(pk__gte=self.first, pk__lte=self.last).order_by("pk")
            rows = images.values_list("pk", "registry", "name", "tag", "digest", "platform_digests")
            for pk, registry, name, tag, digest, platforms in rows.iterator(chunk_size=batch_size):
                yield ExpectedTag(f"image:{pk}", path(registry, name), tag, digest, "image", built_platforms(platforms))
            return
        charts = _indexed_charts(self.host).filter(pk__gte=self.first, pk__lte=self.last).order_by("pk")
        rows = charts.values_list("pk", "registry", "name", "chart_version", "digest")
        for pk, registry, name, version, digest in rows.iterator(chunk_size=batch_size):
            yield ExpectedTag(f"chart:{pk}", path(registry, name), oci_tag(version), digest, "chart")


def _published_images(host: str):
    return DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/")


def _indexed_charts(host: str):
    return HelmChart.objects.indexed().filter(registry__startswith=f"{host}/")


def plan_shards(batch_size: int | None = None) -> list[Shard]:
    """The run's batches, each of at most ``batch_size`` (``AUDIT_BATCH_SIZE``) rows: the version
    tags of a primary-key range of images or charts, each host's ``latest`` tags, and, where there
    are signatures to check, the signatures of each range. Only the boundaries are kept: the
    primary keys are streamed, never held."""
    size = batch_size or settings.AUDIT_BATCH_SIZE
    shards: list[Shard] = []
    for host in registry_hosts():
        signature_shards: list[Shard] = []
        signed = signatures_to_check(host)
        for kind, queryset in (("image", _published_images(host)), ("chart", _indexed_charts(host))):
            for first, last in _pk_ranges(queryset, size):
                shards.append(Shard(kind, host, first, last))
                if signed:
                    signature_shards.append(Shard(f"{kind}{SIGNATURES}", host, first, last))
        shards.append(Shard("latest", host))
        shards += signature_shards
    return shards


def _pk_ranges(queryset, size: int) -> Iterator[tuple[int, int]]:
    """``(first, last)`` primary keys of consecutive runs of ``size`` rows of ``queryset``."""
    first = last = None
    count = 0
    for pk in queryset.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=5000):
        if first is None:
            first = pk
        last, count = pk, count + 1
        if count == size:
            yield first, last
            first, count = None, 0
    if first is not None:
        yield first, last


def signatures_to_check(host: str) -> bool:
    """Whether ``host`` has signatures to check: every published row while a key is configured,
    else those rows that say they were signed."""
    if signing_configured():
        return _published_images(host).exists() or _indexed_charts(host).exists()
    return (
        _published_images(host).exclude(signed_with="").exists()
        or _indexed_charts(host).exclude(signed_with="").exists()
    )


def registry_hosts() -> list[str]:
    hosts = {split_location(r)[0] for r in DockerImage.objects.immutable_tags().values_list("registry", flat=True)}
    hosts |= {split_location(r)[0] for r in HelmChart.objects.indexed().values_list("registry", flat=True)}
    return sorted(hosts)


# A running batch reports its progress (and keeps its run alive) every this many tags.
HEARTBEAT_EVERY = 250


@dataclass
class ShardOutcome:
    """What a checked batch tells its run: tags checked, and image versions whose digest moved
    (the charts' appVersion check needs them once every batch is done)."""

    checked: int = 0
    broken_versions: set[str] = field(default_factory=set)
    skipped: str = ""

    def as_dict(self) -> dict:
        return {"checked": self.checked, "broken_versions": sorted(self.broken_versions), "skipped": self.skipped}
