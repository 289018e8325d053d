"""The scheduled tag-immutability audit: every published tag must still point at its recorded digest.

A run is split into batches (``plan_shards``: primary-key ranges of published images and indexed
charts per registry host, each host's ``latest`` tags, and the signatures of each range) that
any worker of the ``audits`` queue checks (``check_shard``), a Celery chord closing the run
(``finish_run``) when all are done; ``run_audit`` does the same in one process. Each batch
streams its tags from the database into ``releases.audit.audit_tags`` (concurrent HEADs with
connection reuse; memory flat whatever the batch size) and turns the results into
``AuditFinding`` rows: opened when the registry disagrees, kept open across runs, resolved when
it agrees again. Batches cover disjoint tags, so they never write the same finding. Each result
is written on its own, so a crash mid-run leaves every finding as true as the last run that
checked it.

Two runs never overlap: starts are serialised by a PostgreSQL advisory lock, and the run row is
the lock for the run's duration (at most one ``running`` row, a database constraint, kept alive
by its batches' heartbeats). A run whose workers died is closed ``crashed`` by the next start.
A registry's 429/Retry-After pauses every batch of the run (``SharedThrottle``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .. import metrics
from ..audit import ExpectedTag, TagListing, TagResult, TagStatus, audit_tags, content_due, latest_behind
from ..audit.model import normalize_platforms
from ..charts import oci_tag
from ..choices import MOVING_TAG, ImageState
from ..locks import AUDIT_LOCK, exclusive
from ..models import AuditFinding, AuditRun, DockerImage, HelmChart, ReleaseVersion, default_release_layout
from ..notifications import notify
from ..oci import RegistryClient
from ..oci.throttle import Throttle
from ..registry_client import registry_client, split_location
from ..signing import (
    SLSA_PROVENANCE_V1,
    PublicKeyLike,
    VerificationStatus,
    attestation_tag,
    key_id,
    signature_tag,
    verify_image_attestations,
    verify_image_signatures,
)
from ..signing_keys import signing_configured, trusted_keys
from .errors import time_limit_cause
from .signing import INDEX, SPDX_PREDICATE_TYPE

logger = logging.getLogger(__name__)

Type, Severity = AuditFinding.Type, AuditFinding.Severity
SEVERITY = {Type.LATEST_BEHIND: Severity.WARNING}
# What one tag's result can say; a result closes the open findings of these types it no longer shows.
TAG_TYPES = (Type.MISMATCH, Type.MISSING, Type.PLATFORM_DRIFT, Type.UNREACHABLE)
LATEST_TYPES = (Type.LATEST_BEHIND, Type.UNREACHABLE)
SIGNATURE_TYPES = (Type.SIGNATURE_MISSING, Type.SIGNATURE_INVALID)
ATTESTATION_TYPES = (Type.ATTESTATION_MISSING,)
#: The kind of a signatures batch: ``<owner>-signatures`` for a range of rows; ``signatures`` for a
#: whole host (planned before the ranges were; still checked when such a batch is delivered).
SIGNATURES = "-signatures"
HOST_SIGNATURES = "signatures"
#: Keys of the ``.sig``/``.att`` tags in the audit's stream: ``sig:<owner>:<pk>:<version>:<of>``.
SIGNATURE_KEYS = ("sig:", "att:")
#: The attestations every signed platform image carries.
REQUIRED_ATTESTATIONS = (SLSA_PROVENANCE_V1, SPDX_PREDICATE_TYPE)


class AuditAlreadyRunning(Exception):
    """Another audit holds the lock; this one did not start."""


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


# -- signatures and attestations ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignedManifest:
    """One published manifest (image index, platform manifest, chart manifest) whose cosign
    signature, and for a platform its attestations, the audit checks; with what was recorded."""

    owner: str  # "image" or "chart"
    pk: int
    host: str
    repository: str
    version: str
    digest: str
    of: str  # "index", a platform, or "chart"
    signed_with: str
    recorded: dict[str, str]

    @property
    def docker_reference(self) -> str:
        return f"{self.host}/{self.repository}"

    @property
    def checks(self) -> tuple[str, ...]:
        return ("sig",) if self.of in (INDEX, "chart") else ("sig", "att")

    def key(self, check: str) -> str:
        return f"{check}:{self.owner}:{self.pk}:{self.version}:{self.of}"

    def tag(self, check: str) -> str:
        return signature_tag(self.digest) if check == "sig" else attestation_tag(self.digest)

    def recorded_digest(self, check: str) -> str:
        return self.recorded.get("signature" if check == "sig" else "attestation", "")

    def artifact(self, check: str) -> str:
        what = "signature" if check == "sig" else "attestations"
        return f"{self.docker_reference}:{self.version} {self.of} {self.digest[:19]} ({what})"

    @classmethod
    def from_key(cls, key: str, host: str, repository: str, tag: str) -> tuple[str, SignedManifest]:
        check, owner, pk, version, of = key.split(":", 4)
        digest = "sha256:" + tag.removeprefix("sha256-").rsplit(".", 1)[0]
        return check, cls(owner, int(pk), host, repository, version, digest, of, "", {})


def signed_manifests(shard: Shard, batch_size: int = 1000) -> Iterator[SignedManifest]:
    """Every published manifest the signatures batch ``shard`` checks: of every row of its range
    that says it was signed, and of every row when signing is configured (an unsigned one then has
    no signature)."""
    host = shard.host
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").order_by("pk")
    charts = HelmChart.objects.indexed().filter(registry__startswith=f"{host}/").order_by("pk")
    if shard.kind != HOST_SIGNATURES:  # a range of one kind's rows; the other kind has none in it
        owner, in_range = shard.kind.removesuffix(SIGNATURES), {"pk__gte": shard.first, "pk__lte": shard.last}
        images = images.filter(**in_range) if owner == "image" else images.none()
        charts = charts.filter(**in_range) if owner == "chart" else charts.none()
    if not signing_configured():
        images, charts = images.exclude(signed_with=""), charts.exclude(signed_with="")
    fields = ("pk", "state", "registry", "name", "tag", "digest", "platform_digests", "signed_with", "signatures")
    for image in images.only(*fields).iterator(chunk_size=batch_size):
        recorded = image.signatures or {}
        subjects = [(image.digest, INDEX)]
        subjects += [(described["digest"], platform) for platform, described in (image.platform_digests or {}).items()]
        for digest, of in subjects:
            yield SignedManifest(
                "image",
                image.pk,
                host,
                image.repository_path,
                image.tag,
                digest,
                of,
                image.signed_with,
                recorded.get(digest, {}),
            )
    fields = ("pk", "state", "registry", "name", "chart_version", "digest", "signed_with", "signatures")
    for chart in charts.only(*fields).iterator(chunk_size=batch_size):
        yield SignedManifest(
            "chart",
            chart.pk,
            host,
            chart.repository_path,
            oci_tag(chart.chart_version),
            chart.digest,
            "chart",
            chart.signed_with,
            (chart.signatures or {}).get(chart.digest, {}),
        )


def signature_tags(
    shard: Shard,
    trusted_ids: frozenset[str],
    unrecorded: list[SignedManifest],
    ask: Callable[[SignedManifest, str], bool],
    settled: Callable[[], None],
) -> Iterator[ExpectedTag]:
    """The ``.sig``/``.att`` tags whose manifests were recorded when a trusted key signed them,
    as tags for the audit to HEAD when ``ask(manifest, check)`` says so (else ``settled()``): the
    same digest is byte for byte what was verified when it was written. The others (published
    unsigned, or by a key no longer trusted) go to ``unrecorded`` to be verified in full."""
    for manifest in signed_manifests(shard):
        recorded = all(manifest.recorded_digest(check) for check in manifest.checks)
        if not recorded or manifest.signed_with not in trusted_ids:
            unrecorded.append(manifest)
            continue
        for check in manifest.checks:
            if not ask(manifest, check):
                settled()
                continue
            yield ExpectedTag(
                manifest.key(check),
                manifest.repository,
                manifest.tag(check),
                manifest.recorded_digest(check),
                "chart",  # an OCI image manifest: a HEAD says all
            )


def record_signature_result(
    book: FindingBook, client: RegistryClient, host: str, trusted: Sequence[PublicKeyLike], result: TagResult
) -> None:
    """Turn the HEAD of one ``.sig``/``.att`` tag into findings: the recorded digest is fine, a gone
    tag is missing, another digest is verified in full (another signer may have appended)."""
    expected = result.expected
    check, manifest = SignedManifest.from_key(expected.key, host, expected.repository, expected.tag)
    if result.status in (TagStatus.UNREACHABLE, TagStatus.ERROR):
        return  # nothing is known: the version tag's own check reports the registry; findings stay
    if result.status is TagStatus.OK:
        problems: list[tuple[str, str, str, str]] = []
    elif result.status is TagStatus.MISSING:
        kind = Type.SIGNATURE_MISSING if check == "sig" else Type.ATTESTATION_MISSING
        problems = [(kind, manifest.digest, "", f"{expected.repository}:{expected.tag} is gone from the registry")]
    else:
        problems = verify_signed_manifest(client, check, manifest, trusted)
    record_signature_problems(book, manifest, check, problems)


def unrecorded_hint(manifest: SignedManifest, trusted_ids: frozenset[str]) -> str:
    """Why a manifest had no recorded signature to compare with, for the finding's detail."""
    if not manifest.signed_with:
        return " (published unsigned: no SIGNING_KEY was configured then)"
    if manifest.signed_with not in trusted_ids:
        return (
            f" (signed with key {manifest.signed_with[:16]}, which is not trusted now: add its public key "
            "to TRUSTED_SIGNING_KEYS)"
        )
    return ""


def verify_signed_manifest(
    client: RegistryClient, check: str, manifest: SignedManifest, trusted: Sequence[PublicKeyLike], hint: str = ""
) -> list[tuple[str, str, str, str]]:
    """Read and verify the ``.sig`` (or every required attestation in the ``.att``) of one manifest."""
    if check == "sig":
        verdict = verify_image_signatures(
            client, manifest.repository, manifest.digest, trusted, docker_reference=manifest.docker_reference
        )
        if verdict.ok:
            return []
        kind = Type.SIGNATURE_MISSING if verdict.status is VerificationStatus.MISSING else Type.SIGNATURE_INVALID
        return [(kind, manifest.digest, verdict.manifest_digest or "", verdict.detail + hint)]
    failed = []
    for predicate_type in REQUIRED_ATTESTATIONS:
        verdict = verify_image_attestations(
            client, manifest.repository, manifest.digest, trusted, predicate_type=predicate_type
        )
        if not verdict.ok:
            failed.append(f"{predicate_type}: {verdict.detail}")
    if not failed:
        return []
    return [(Type.ATTESTATION_MISSING, manifest.digest, "", "; ".join(failed) + hint)]


def record_signature_problems(
    book: FindingBook, manifest: SignedManifest, check: str, problems: list[tuple[str, str, str, str]]
) -> None:
    book.record(
        manifest.repository,
        manifest.tag(check),
        SIGNATURE_TYPES if check == "sig" else ATTESTATION_TYPES,
        problems,
        image_pk=manifest.pk if manifest.owner == "image" else None,
        chart_pk=manifest.pk if manifest.owner == "chart" else None,
        artifact=manifest.artifact(check),
    )


def check_signatures(
    book: FindingBook,
    client: RegistryClient,
    shard: Shard,
    outcome: ShardOutcome,
    report: Callable[[], None],
    on_progress: Callable[[int], None] | None,
) -> None:
    """A signatures batch: every signed manifest's ``.sig`` (and a platform's
    ``.att``) must be listed in its repository; its digest is HEADed (and compared with the
    recorded one) when it is not listed, has an open finding, or its turn has come (one run in
    ``AUDIT_SIGNATURE_RECHECK_RUNS``); read and verified in full when it was never recorded."""
    host = shard.host
    trusted = trusted_keys()
    trusted_ids = frozenset(key_id(key) for key in trusted)
    listing = TagListing(client)
    every, run_number = settings.AUDIT_SIGNATURE_RECHECK_RUNS, book.run.pk

    def ask(manifest: SignedManifest, check: str) -> bool:
        tag = manifest.tag(check)
        return (
            not listing.listed(manifest.repository, tag)
            or book.any_open(manifest.repository, tag, SIGNATURE_TYPES if check == "sig" else ATTESTATION_TYPES)
            or content_due(manifest.digest, run_number, every)
        )

    def settled() -> None:
        outcome.checked += 1
        if outcome.checked % HEARTBEAT_EVERY == 0:
            report()
        if on_progress:
            on_progress(outcome.checked)

    unrecorded: list[SignedManifest] = []
    expected = signature_tags(shard, trusted_ids, unrecorded, ask, settled)
    for result in audit_tags(client, expected, concurrency=settings.AUDIT_CONCURRENCY):
        record_signature_result(book, client, host, trusted, result)
        settled()
    for manifest in unrecorded:
        outcome.checked += 1
        hint = unrecorded_hint(manifest, trusted_ids)
        for check in manifest.checks:
            if listing.listed(manifest.repository, manifest.tag(check)) is False:
                kind = Type.SIGNATURE_MISSING if check == "sig" else Type.ATTESTATION_MISSING
                detail = f"{manifest.repository}:{manifest.tag(check)} is not in the registry{hint}"
                problems = [(kind, manifest.digest, "", detail)]
            else:
                problems = verify_signed_manifest(client, check, manifest, trusted, hint)
            record_signature_problems(book, manifest, check, problems)
