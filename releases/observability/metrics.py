"""Prometheus metrics (``prometheus-client``), served at ``/metrics``.

Two kinds. What happens in a worker (stage durations, bytes pushed, audit tags checked, task
failures) is counted where it happens, in the process doing the work; with
``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn workers, Celery prefork children on one host) every
process writes its values to files there and ``/metrics`` adds them up. What the state is
(releases by state, open findings by type, queue depths) is computed when scraped, from
PostgreSQL and Redis, so every web process answers the same whichever worker did the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db.models import Count
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from releases.choices import ReleaseState
from releases.models import AuditFinding, ReleaseVersion

logger = logging.getLogger(__name__)

STAGE_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)

STAGE_SECONDS = Histogram(
    "release_registry_stage_duration_seconds",
    "Duration of a pipeline stage that ended well: image build/scan/push, chart validate/package/upload.",
    ["kind", "stage"],
    buckets=STAGE_BUCKETS,
)
BYTES_PUSHED = Counter(
    "release_registry_pushed_bytes_total", "Bytes uploaded to the registry (blobs; reused blobs count 0).", ["kind"]
)
AUDIT_TAGS_CHECKED = Counter("release_registry_audit_tags_checked_total", "Tags the audit compared with the registry.")
TASK_FAILURES = Counter(
    "release_registry_task_failures_total",
    "Tasks that ended their row failed, by task and kind of reason (refused, transient, time_limit, unexpected, died).",
    ["task", "kind"],
)

ADMISSION_REVIEWS = Counter(
    "release_registry_admission_reviews_total",
    "Admission reviews answered, by webhook (validate, mutate) and outcome (allowed, refused, warned, pinned, "
    "malformed, unauthorized).",
    ["webhook", "outcome"],
)
VERIFIED_REFERENCES = Counter(
    "release_registry_verified_references_total",
    "References verify judged (API and command), by outcome (verified, refused, invalid).",
    ["outcome"],
)


@contextmanager
def timed(kind: str, stage: str) -> Iterator[None]:
    """Observe the block's duration under ``kind``/``stage`` when it ends without an exception."""
    started = time.monotonic()
    yield
    STAGE_SECONDS.labels(kind=kind, stage=stage).observe(time.monotonic() - started)


def task_failed(task: str, kind: str) -> None:
    TASK_FAILURES.labels(task=task, kind=kind).inc()


def failure_kind(error: BaseException) -> str:
    """``time_limit`` when the soft limit is behind ``error``, else ``unexpected``."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        if type(current).__name__ == "SoftTimeLimitExceeded":
            return "time_limit"
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "unexpected"


def queue_lengths() -> dict[str, int]:
    """Messages waiting per queue (Redis ``LLEN``; kombu keeps a list per queue and priority step)."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return {}
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        pipe = client.pipeline()
        names = {queue: [queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9))] for queue in settings.WORK_QUEUES}
        for keys in names.values():
            for key in keys:
                pipe.llen(key)
        counts = iter(pipe.execute())
        return {queue: sum(next(counts) for _ in keys) for queue, keys in names.items()}
    finally:
        client.close()


class StateCollector:
    """Gauges computed at scrape time from the database and the broker."""

    def collect(self):
        releases = GaugeMetricFamily("release_registry_releases", "Releases by state.", labels=["state"])
        counts = dict(ReleaseVersion.objects.order_by().values_list("state").annotate(n=Count("pk")))
        for state in ReleaseState.values:
            releases.add_metric([state], counts.get(state, 0))
        yield releases

        findings = GaugeMetricFamily(
            "release_registry_audit_open_findings", "Open audit findings by type.", labels=["type"]
        )
        counts = dict(AuditFinding.objects.open().order_by().values_list("type").annotate(n=Count("pk")))
        for kind in AuditFinding.Type.values:
            findings.add_metric([kind], counts.get(kind, 0))
        yield findings

        depth = GaugeMetricFamily("release_registry_queue_length", "Tasks waiting per Celery queue.", labels=["queue"])
        up = GaugeMetricFamily("release_registry_broker_up", "1 when the broker answered the queue-length scrape.")
        try:
            for queue, length in queue_lengths().items():
                depth.add_metric([queue], length)
            up.add_metric([], 1)
        except (redis.RedisError, OSError) as error:
            logger.warning("queue lengths unavailable: %s", error)
            up.add_metric([], 0)
        yield depth
        yield up


def exposition() -> bytes:
    """The text exposition of every metric: this process's (or all processes' in multi-process
    mode) counters and histograms, then the state gauges."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        events = CollectorRegistry()
        MultiProcessCollector(events)
    else:
        events = REGISTRY
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    return generate_latest(events) + generate_latest(state)
