"""Checking a batch and closing the run: the tags of a batch against the registry, heartbeats, the
throttle the batches share, and the run's end (``finish_run``, ``fail_run``; ``run_audit`` in
one process)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable

import redis
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from releases.adapters.notifications import notify
from releases.adapters.registry_client import registry_client
from releases.audit import audit_tags
from releases.models import AuditFinding, AuditRun, DockerImage, HelmChart
from releases.observability import metrics
from releases.oci import RegistryClient
from releases.oci.throttle import Throttle
from releases.pipelines.audit.findings import (
    LATEST_TYPES,
    TAG_TYPES,
    FindingBook,
    check_chart_app_versions,
    findings_of,
)
from releases.pipelines.audit.planning import (
    HEARTBEAT_EVERY,
    HOST_SIGNATURES,
    Shard,
    ShardOutcome,
    plan_shards,
    start_run,
)
from releases.pipelines.audit.signatures import check_signatures
from releases.pipelines.errors import time_limit_cause

logger = logging.getLogger(__name__)

Type, Severity = AuditFinding.Type, AuditFinding.Severity


def check_shard(
    run_pk: int, shard: Shard, on_progress: Callable[[int], None] | None = None, throttle_key: str = ""
) -> ShardOutcome:
    """Check one batch of run ``run_pk``'s tags and record their findings; nothing when the run has
    ended (crashed, or closed as dead by a newer run): a late batch never writes into another run."""
    run = AuditRun.objects.filter(pk=run_pk, status=AuditRun.Status.RUNNING).first()
    if run is None:
        return ShardOutcome(skipped=f"audit {run_pk} is no longer running")
    logger.info("checking the %s tags of %s (keys %s..%s)", shard.kind, shard.host, shard.first, shard.last)
    started = time.monotonic()
    book = FindingBook(run)
    outcome = ShardOutcome()
    reported = {"checked": 0, "new": 0, "resolved": 0}

    def report(final: bool = False) -> None:
        delta = {
            "checked": outcome.checked - reported["checked"],
            "new": len(book.new) - reported["new"],
            "resolved": book.resolved - reported["resolved"],
        }
        AuditRun.objects.filter(pk=run_pk).update(
            heartbeat_at=timezone.now(),
            tags_checked=F("tags_checked") + delta["checked"],
            new_findings=F("new_findings") + delta["new"],
            resolved_findings=F("resolved_findings") + delta["resolved"],
            shards_done=F("shards_done") + (1 if final else 0),
        )
        reported.update(checked=outcome.checked, new=len(book.new), resolved=book.resolved)
        metrics.AUDIT_TAGS_CHECKED.inc(delta["checked"])

    with registry_client(shard.host) as client:
        if throttle_key:
            client.throttle = shared_throttle(throttle_key)
        if shard.kind.endswith(HOST_SIGNATURES):
            check_signatures(book, client, shard, outcome, report, on_progress)
        else:
            check_tags(book, client, shard, outcome, report, on_progress)
    report(final=True)
    elapsed = time.monotonic() - started
    logger.info(
        "checked %d %s tags of %s in %.1f s (%.0f/s)",
        outcome.checked,
        shard.kind,
        shard.host,
        elapsed,
        outcome.checked / elapsed if elapsed else 0,
    )
    return outcome


def check_tags(
    book: FindingBook,
    client: RegistryClient,
    shard: Shard,
    outcome: ShardOutcome,
    report: Callable[[], None],
    on_progress: Callable[[int], None] | None,
) -> None:
    """An image, chart or ``latest`` batch: each tag HEADed and compared with its recorded digest."""
    for result in audit_tags(client, shard.expected_tags(), concurrency=settings.AUDIT_CONCURRENCY):
        outcome.checked += 1
        problems = findings_of(result)
        kind, _, pk = result.expected.key.partition(":")
        book.record(
            result.expected.repository,
            result.expected.tag,
            LATEST_TYPES if kind == "latest" else TAG_TYPES,
            problems,
            image_pk=int(pk) if kind == "image" else None,
            chart_pk=int(pk) if kind == "chart" else None,
        )
        if kind == "image" and any(p[0] != Type.UNREACHABLE for p in problems):
            outcome.broken_versions.add(result.expected.tag)
        if outcome.checked % HEARTBEAT_EVERY == 0:
            report()
        if on_progress:
            on_progress(outcome.checked)


def finish_run(run_pk: int, broken_versions: Iterable[str]) -> AuditRun | None:
    """Every batch is done: check the charts' appVersions, close the run ``succeeded`` and notify
    the new findings. Nothing when the run already ended (a batch crashed)."""
    run = AuditRun.objects.filter(pk=run_pk, status=AuditRun.Status.RUNNING).first()
    if run is None:
        return None
    book = FindingBook(run)
    check_chart_app_versions(book, set(broken_versions))
    open_by_type = dict(Counter(AuditFinding.objects.open().values_list("type", flat=True)))
    closed = AuditRun.objects.filter(pk=run_pk, status=AuditRun.Status.RUNNING).update(
        status=AuditRun.Status.SUCCEEDED,
        finished=timezone.now(),
        heartbeat_at=timezone.now(),
        findings_by_type=open_by_type,
        new_findings=F("new_findings") + len(book.new),
        resolved_findings=F("resolved_findings") + book.resolved,
    )
    if not closed:
        return None
    notify(AuditFinding.objects.open().filter(notified_at__isnull=True))
    return AuditRun.objects.get(pk=run_pk)


def fail_run(run_pk: int, reason: str) -> bool:
    """End a running run ``crashed`` with ``reason`` (visible at once); False when it had ended."""
    return bool(
        AuditRun.objects.filter(pk=run_pk, status=AuditRun.Status.RUNNING).update(
            status=AuditRun.Status.CRASHED, finished=timezone.now(), error=reason
        )
    )


def run_audit(*, triggered_by: str = "", on_progress: Callable[[int, int], None] | None = None) -> AuditRun:
    """One audit of every published tag in this process (``manage.py audit_tags``, tests); returns
    the finished ``AuditRun``. The same run, batches and findings as the sharded audit the
    ``audit_published_tags`` task dispatches, checked one batch after the other.

    Refuses (``AuditAlreadyRunning``) to start while another audit runs.
    """
    run = start_run(triggered_by=triggered_by)
    try:
        shards = plan_shards()
        AuditRun.objects.filter(pk=run.pk).update(shards_total=len(shards))
        total = _tag_count()
        done = 0
        broken: set[str] = set()
        for shard in shards:
            before = done

            def progress(checked: int, before: int = before) -> None:
                if on_progress:
                    on_progress(before + checked, total)

            outcome = check_shard(run.pk, shard, progress)
            done += outcome.checked
            broken |= outcome.broken_versions
        finished = finish_run(run.pk, broken)
    except Exception as error:
        # Recorded now, not by the next audit: a crash (or the time limit) is visible at once.
        fail_run(run.pk, crash_reason(error))
        raise
    return finished or AuditRun.objects.get(pk=run.pk)


def _tag_count() -> int:
    latest_tags = (
        DockerImage.objects.immutable_tags().exclude(tag__contains="-").values("registry", "name").distinct().count()
    )
    return DockerImage.objects.immutable_tags().count() + HelmChart.objects.indexed().count() + latest_tags


def crash_reason(error: BaseException) -> str:
    if time_limit_cause(error) is not None:
        return (
            f"a batch of the audit exceeded its {settings.AUDIT_TIME_LIMIT_SECONDS} s time limit "
            "(AUDIT_TIME_LIMIT_SECONDS); the registry is slow or the batches are big: raise "
            "AUDIT_TIME_LIMIT_SECONDS or AUDIT_CONCURRENCY, or lower AUDIT_BATCH_SIZE"
        )
    return f"unexpected {type(error).__name__}: {error} (the traceback is in the worker log)"


class SharedThrottle(Throttle):
    """A client throttle whose pauses every worker of the run shares through Redis: when the
    registry answers one batch 429/Retry-After, every batch of the run waits, not just that
    worker's (the registry limits the account, not the connection). Redis is read at most every
    ``poll`` seconds; without Redis it is the client's own throttle."""

    def __init__(self, key: str, store, poll: float = 0.5) -> None:
        super().__init__()
        self._key, self._store, self._poll = key, store, poll
        self._next_poll = 0.0

    def hold(self, seconds: float) -> None:
        super().hold(seconds)
        resume_at = time.time() + seconds
        try:
            current = self._store.get(self._key)
            if current is None or float(current) < resume_at:
                self._store.set(self._key, repr(resume_at), px=int(seconds * 1000) + 1000)
        except (redis.RedisError, ValueError):
            logger.warning("could not share a registry pause of %.1f s with the other audit workers", seconds)

    def remaining(self) -> float:
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self._poll
            try:
                value = self._store.get(self._key)
                wait = float(value) - time.time() if value is not None else 0.0
            except (redis.RedisError, ValueError):
                wait = 0.0
            if wait > 0:
                super().hold(wait)
        return super().remaining()


def shared_throttle(key: str) -> Throttle:
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return Throttle()
    return SharedThrottle(key, redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2))


def throttle_key(run_pk: int, host: str) -> str:
    return f"release-registry:audit:{run_pk}:throttle:{host}"
