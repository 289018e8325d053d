"""Celery tasks. They take primary keys, are safe to run twice, and retry only transient errors.

A release is published by ``orchestrate_release``: both image builds run in parallel (a group)
and a chord calls ``images_finished`` when both are done; it starts the chart pipeline only when
both images are available, and ``finish_release`` marks the release published.

No work is left hanging: an unexpected exception ends the row failed (invalid for a chart) naming
the exception, the traceback in the log; a soft time limit (per kind of task, from the settings)
ends it naming the limit; a task that dies past its own handler (its hard time limit, a lost
worker) fails its release through the chord's and chain's errback (``release_task_failed``); and
``sweep_stalled_work`` resumes or fails whatever still made no progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Signature, Task, chain, chord, shared_task
from celery.exceptions import ChordError, TimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from releases.adapters.notifications import announce_withdrawal as announce
from releases.observability import metrics
from releases.observability.logcontext import log_context

from .models import AuditRun, ReleaseWithdrawal
from .oci import RegistryUnavailable
from .pipelines import audit, releases, stalled
from .pipelines import charts as chart_pipeline
from .pipelines import images as image_pipeline
from .pipelines import latest as latest_pipeline
from .pipelines.errors import PipelineBusy, time_limit_cause

logger = logging.getLogger(__name__)

# A task whose row another worker is processing comes back this much later (and again, until done).
BUSY_RETRY_SECONDS = 5

# The database connection dropped (a restart, a failover, a terminated session): the transaction
# rolled back, the session's advisory locks are gone, and the task retries on a new connection.
CONNECTION_LOST = (OperationalError, InterfaceError)


class TimeLimit:
    """The soft and hard time limits of one kind of task, from the setting that names them."""

    def __init__(self, what: str, setting: str) -> None:
        self.what = what
        self.setting = setting

    @property
    def soft(self) -> int:
        return getattr(settings, self.setting)

    @property
    def options(self) -> dict[str, int]:
        """``soft_time_limit``/``time_limit`` for ``shared_task``: the hard one a grace period later."""
        return {"soft_time_limit": self.soft, "time_limit": self.soft + settings.TIME_LIMIT_GRACE_SECONDS}

    def exceeded(self, stage: str) -> str:
        return (
            f"{self.what} exceeded its {self.soft} s time limit ({self.setting}) while {stage}; "
            f"a step hung or the work is too big: check the Docker engine and the registry, or raise {self.setting}"
        )


class WorkerTimeLimits(Task):
    """A task whose time limits are the executing worker's settings. Celery copies the enqueuing
    process's task limits into the message, where they win over the worker's; they are left out,
    so the limits (and the reasons that name them) are always those of the worker's environment."""

    def _get_exec_options(self) -> dict:
        options = dict(super()._get_exec_options())
        options.pop("time_limit", None)
        options.pop("soft_time_limit", None)
        return options


BUILD_LIMIT = TimeLimit("build", "BUILD_TIME_LIMIT_SECONDS")
CHART_LIMIT = TimeLimit("chart publishing", "CHART_TIME_LIMIT_SECONDS")
ORCHESTRATION_LIMIT = TimeLimit("release orchestration", "ORCHESTRATION_TIME_LIMIT_SECONDS")
AUDIT_LIMIT = TimeLimit("audit", "AUDIT_TIME_LIMIT_SECONDS")


def unexpected(error: BaseException) -> str:
    """The failure reason of an exception nobody anticipated: its type and message."""
    return f"unexpected {type(error).__name__}: {error} (a bug; the traceback is in the worker log)"


def _record_failure(give_up: Callable[[str], object], reason: str) -> None:
    """``give_up(reason)``, on a fresh connection if a query interrupted by a time limit broke this one."""
    try:
        give_up(reason)
    except DatabaseError:
        connection.close()
        give_up(reason)


def _drive(
    task, run, transient: tuple[type[Exception], ...], give_up, attempt: int, limit: TimeLimit, stage: Callable[[], str]
) -> str:
    """Run a pipeline step for ``task``: a busy row comes back later (no limit: the other worker
    will finish); a transient error (``transient``, or the database connection lost mid-step: every
    step is resumable from the row's state) is retried with backoff ``max_retries`` times (never
    sooner than a registry's ``Retry-After``), counted in ``attempt`` so busy retries never use up
    that budget; then ``give_up`` records the reason. The soft time limit and any other exception
    end the row at once, named in the reason."""
    try:
        return run()
    except PipelineBusy as busy:
        raise task.retry(exc=busy, countdown=BUSY_RETRY_SECONDS, max_retries=None) from busy
    except (*transient, *CONNECTION_LOST) as error:
        if time_limit_cause(error) is not None:  # a query the soft time limit interrupted
            return _time_limit_exceeded(task, give_up, limit, stage)
        if isinstance(error, CONNECTION_LOST):
            connection.close()
            error = type(error)(f"lost the database connection: {error}; check PostgreSQL")
        if attempt >= task.max_retries:
            _record_failure(give_up, f"{error} (gave up after {task.max_retries} retries)")
            metrics.task_failed(_short(task), "transient")
            return "failed"
        countdown = max(min(2**attempt * 5, 60), getattr(error, "retry_after", None) or 0)
        raise task.retry(exc=error, countdown=countdown, max_retries=None, kwargs={"attempt": attempt + 1}) from error
    except Exception as error:
        if time_limit_cause(error) is not None:
            return _time_limit_exceeded(task, give_up, limit, stage)
        logger.exception("%s[%s] raised unexpectedly", task.name, task.request.id)
        _record_failure(give_up, unexpected(error))
        metrics.task_failed(_short(task), metrics.failure_kind(error))
        return "failed"


def _time_limit_exceeded(task, give_up, limit: TimeLimit, stage: Callable[[], str]) -> str:
    logger.error("%s[%s] hit its soft time limit", task.name, task.request.id, exc_info=True)
    connection.close()  # the limit may have interrupted a query half-way
    _record_failure(give_up, limit.exceeded(stage()))
    metrics.task_failed(_short(task), "time_limit")
    return "failed"


def _short(task) -> str:
    return task.name.rpartition(".")[2]


def _release_step(task, release_pk: int, run: Callable[[], str]) -> str:
    """Run an orchestration step; if it raises (or hits its time limit), the release fails naming it."""
    short_name = task.name.rpartition(".")[2]
    try:
        with log_context(release=release_pk):
            return run()
    except Exception as error:
        if isinstance(error, CONNECTION_LOST) and time_limit_cause(error) is None:
            connection.close()  # every step is resumable: run it again on a new connection
            if task.request.retries < task.max_retries:
                raise task.retry(exc=error, countdown=BUSY_RETRY_SECONDS) from error
        if time_limit_cause(error) is not None:
            logger.error("%s[%s] hit its soft time limit", task.name, task.request.id, exc_info=True)
            connection.close()
            reason = ORCHESTRATION_LIMIT.exceeded(f"running {short_name}")
        else:
            logger.exception("%s[%s] raised unexpectedly", task.name, task.request.id)
            reason = f"{short_name} raised {unexpected(error)}"
        label = f"{task.name}[{task.request.id}]"
        _record_failure(lambda why: releases.fail_unfinished(release_pk, why, task=label), reason)
        metrics.task_failed(short_name, metrics.failure_kind(error))
        return "failed"


@shared_task(
    base=WorkerTimeLimits, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3, **BUILD_LIMIT.options
)
def build_image(self, image_pk: int, attempt: int = 0) -> str:
    """Take a ``DockerImage`` from where its state says to ``available`` (or ``failed``).

    Retries the engine or registry being unreachable, with backoff, ``max_retries`` times; then
    the image fails saying which service was unreachable and what to check. Anything else
    unexpected, or ``BUILD_TIME_LIMIT_SECONDS``, fails it at once naming the exception or the limit.
    """
    task = f"build_image[{self.request.id}]"
    return _drive(
        self,
        lambda: image_pipeline.run_image_pipeline(image_pk, task=task),
        image_pipeline.TRANSIENT_ERRORS,
        lambda reason: image_pipeline.fail_image(image_pk, reason, task=task),
        attempt,
        BUILD_LIMIT,
        lambda: image_pipeline.stage(image_pk),
    )


@shared_task(
    base=WorkerTimeLimits, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3, **CHART_LIMIT.options
)
def publish_chart(self, chart_pk: int, attempt: int = 0) -> str:
    """Take a ``HelmChart`` from ``validating`` to ``indexed`` (or ``invalid`` with every problem)."""
    task = f"publish_chart[{self.request.id}]"
    return _drive(
        self,
        lambda: chart_pipeline.run_chart_pipeline(chart_pk, task=task),
        chart_pipeline.TRANSIENT_ERRORS,
        lambda reason: chart_pipeline.reject_chart(chart_pk, [reason], task=task),
        attempt,
        CHART_LIMIT,
        lambda: chart_pipeline.stage(chart_pk),
    )


def build_image_signature(image_pk: int) -> Signature:
    """``build_image`` for one image, which fails it if the task dies without recording an outcome."""
    return build_image.si(image_pk).on_error(artifact_task_failed.s(kind="image", pk=image_pk))


def publish_chart_signature(chart_pk: int) -> Signature:
    """``publish_chart`` for one chart, which rejects it if the task dies without recording an outcome."""
    return publish_chart.si(chart_pk).on_error(artifact_task_failed.s(kind="chart", pk=chart_pk))


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, **ORCHESTRATION_LIMIT.options)
def orchestrate_release(self, release_pk: int) -> str:
    """Resume a release from its state: pending -> building, then build every image in parallel (the
    chord continues the release); a publishing release gets its chart published and finished."""

    def run() -> str:
        step = releases.next_step(release_pk, task=f"orchestrate_release[{self.request.id}]")
        if step.images:
            header = [build_image.si(pk) for pk in step.images]
            callback = images_finished.si(release_pk).on_error(release_task_failed.s(release_pk=release_pk))
            chord(header, callback).delay()
            return f"building {len(step.images)} image(s)"
        if step.chart is not None:
            _publish_and_finish(release_pk, step.chart)
            return f"publishing chart {step.chart}"
        return "nothing to do"

    return _release_step(self, release_pk, run)


def _publish_and_finish(release_pk: int, chart_pk: int) -> None:
    work = chain(publish_chart.si(chart_pk), finish_release.si(release_pk))
    work.on_error(release_task_failed.s(release_pk=release_pk)).delay()


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, **ORCHESTRATION_LIMIT.options)
def images_finished(self, release_pk: int) -> str:
    """Every image build ended: the release fails naming a failed image, or its chart is published."""

    def run() -> str:
        chart_pk = releases.images_finished(release_pk, task=f"images_finished[{self.request.id}]")
        if chart_pk is None:
            return "no chart to publish"
        _publish_and_finish(release_pk, chart_pk)
        return f"publishing chart {chart_pk}"

    return _release_step(self, release_pk, run)


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, **ORCHESTRATION_LIMIT.options)
def finish_release(self, release_pk: int) -> str:
    """The chart pipeline ended: publish the release, or fail it with the chart's problems."""
    return _release_step(
        self, release_pk, lambda: releases.finish_release(release_pk, task=f"finish_release[{self.request.id}]")
    )


def _died(request, exc: BaseException) -> str:
    """How a task ended without recording an outcome, for the failure reason."""
    if isinstance(exc, ChordError):
        # Raised for the chord's callback when a member failed: the member is the one that died.
        return (
            f"an image build of the release died without recording an outcome ({exc}); it hung past its hard "
            "time limit or raised past its own handler, see the worker log"
        )
    name = (getattr(request, "task", None) or "a task").rpartition(".")[2]
    if isinstance(exc, TimeLimitExceeded):
        return f"{name} was killed at its hard time limit ({exc}); it hung past its soft limit"
    return f"{name} ended without recording an outcome: {type(exc).__name__}: {exc}"


@shared_task(acks_late=True)
def release_task_failed(request, exc: BaseException, traceback, release_pk: int) -> str:
    """Errback of a release's chord and chain: a build, the chord's callback or the chart's chain died
    without recording an outcome. The release fails naming its failed artifacts; a member still
    active is orphaned (every member has ended when a chord errs) and fails with the error."""
    logger.error("release %s: %s", release_pk, _died(request, exc))
    metrics.task_failed((getattr(request, "task", None) or "unknown").rpartition(".")[2], "died")
    label = f"release_task_failed[{getattr(request, 'id', '')}]"
    ended = releases.fail_unfinished(release_pk, _died(request, exc), task=label)
    return "failed" if ended else "already ended"


@shared_task(acks_late=True)
def artifact_task_failed(request, exc: BaseException, traceback, kind: str, pk: int) -> str:
    """Errback of a single ``build_image``/``publish_chart``: the row fails with how its task died."""
    logger.error("%s %s: %s", kind, pk, _died(request, exc))
    metrics.task_failed("build_image" if kind == "image" else "publish_chart", "died")
    label = f"artifact_task_failed[{getattr(request, 'id', '')}]"
    if kind == "image":
        ended = image_pipeline.fail_image(pk, _died(request, exc), task=label)
    else:
        ended = chart_pipeline.reject_chart(pk, [_died(request, exc)], task=label)
    return "failed" if ended else "already ended"


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, **ORCHESTRATION_LIMIT.options)
def sweep_stalled_work(self) -> dict:
    """Beat, every ``SWEEP_INTERVAL_MINUTES``: resume active work with no progress for
    ``STALLED_AFTER_MINUTES`` (pipelines resume from the row's state), or fail it once
    ``STALLED_REQUEUE_LIMIT`` re-enqueues brought no state change."""
    outcome = stalled.sweep(task=f"sweep_stalled_work[{self.request.id}]")
    for release_pk in sorted(outcome.releases):
        orchestrate_release.delay(release_pk)
    for image_pk in sorted(outcome.images):
        build_image_signature(image_pk).delay()
    for chart_pk in sorted(outcome.charts):
        publish_chart_signature(chart_pk).delay()
    if outcome.failed or outcome.releases or outcome.images or outcome.charts:
        logger.warning("stalled work: %s", outcome.summary())
    return outcome.summary()


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, **ORCHESTRATION_LIMIT.options)
def audit_published_tags(self, triggered_by: str = "beat") -> dict:
    """Start a tag-immutability audit (scheduled by beat; also started from the admin and the API):
    open its ``AuditRun`` and check its batches in parallel on the ``audits`` workers, a chord
    closing the run. Skips while another audit is alive, so a second beat, or the admin at the
    same moment, never doubles a run."""
    try:
        run = audit.start_run(triggered_by=triggered_by)
    except audit.AuditAlreadyRunning as error:
        return {"skipped": str(error)}
    try:
        shards = audit.plan_shards()
        AuditRun.objects.filter(pk=run.pk).update(shards_total=len(shards))
        header = [audit_shard.si(run.pk, shard.as_dict()) for shard in shards]
        chord(header, audit_finished.s(run.pk)).on_error(audit_failed.s(run_pk=run.pk)).delay()
    except Exception as error:
        logger.exception("audit_published_tags[%s] could not dispatch audit %s", self.request.id, run.pk)
        audit.fail_run(run.pk, audit.crash_reason(error))
        metrics.task_failed("audit_published_tags", metrics.failure_kind(error))
        return {"crashed": audit.crash_reason(error)}
    return {"run": run.pk, "shards": len(shards)}


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, **AUDIT_LIMIT.options)
def audit_shard(self, run_pk: int, shard: dict) -> dict:
    """Check one batch of a run's tags (``AUDIT_TIME_LIMIT_SECONDS`` per batch). A crash or the
    time limit ends the run crashed with the reason at once; the other batches then skip."""
    batch = audit.Shard.from_dict(shard)
    with log_context(audit_run=run_pk):
        try:
            return audit.check_shard(run_pk, batch, throttle_key=audit.throttle_key(run_pk, batch.host)).as_dict()
        except Exception as error:
            if time_limit_cause(error) is not None:
                connection.close()
            logger.exception("audit_shard[%s] of audit %s crashed", self.request.id, run_pk)
            _record_failure(lambda reason: audit.fail_run(run_pk, reason), audit.crash_reason(error))
            metrics.task_failed("audit_shard", metrics.failure_kind(error))
            return {"crashed": audit.crash_reason(error)}


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, **ORCHESTRATION_LIMIT.options)
def audit_finished(self, outcomes: list[dict], run_pk: int) -> dict:
    """The chord's callback: every batch ended; close the run and notify its new findings."""
    with log_context(audit_run=run_pk):
        broken = {version for outcome in outcomes or [] for version in outcome.get("broken_versions", ())}
        run = audit.finish_run(run_pk, broken)
        if run is None:
            return {"run": run_pk, "skipped": "the run had already ended"}
        return {"run": run.pk, "tags_checked": run.tags_checked, "open": run.findings_by_type, "new": run.new_findings}


@shared_task(acks_late=True)
def audit_failed(request, exc: BaseException, traceback, run_pk: int) -> str:
    """Errback of a run's chord: a batch (or the callback) died without recording an outcome."""
    reason = f"a batch of the audit died without recording an outcome: {_died(request, exc)}"
    logger.error("audit %s: %s", run_pk, reason)
    metrics.task_failed("audit_shard", "died")
    return "crashed" if audit.fail_run(run_pk, reason) else "already ended"


@shared_task(base=WorkerTimeLimits, bind=True, acks_late=True, max_retries=5, **ORCHESTRATION_LIMIT.options)
def align_latest_tags(self, release_pk: int, attempt: int = 0) -> str:
    """After a release's withdrawal or restore (enqueued on commit): point each of its image
    repositories' ``latest`` at the newest published, not withdrawn, version. The registry being
    unreachable is retried with backoff ``max_retries`` times, the ``LatestTag`` rows saying
    ``moving`` and why meanwhile; then they end ``failed`` naming the error."""

    def run() -> str:
        try:
            outcomes = latest_pipeline.align_release(release_pk, attempt=attempt)
        except RegistryUnavailable as error:
            if attempt < self.max_retries:
                why = f"the registry did not answer ({error}); retry {attempt + 1} of {self.max_retries} follows"
                latest_pipeline.mark_moving(release_pk, why, attempt=attempt + 1)
            raise
        return ", ".join(f"{o.repository}: {o.state} {o.version}".strip() for o in outcomes) or "no images"

    def give_up(reason: str) -> None:
        latest_pipeline.mark_failed(release_pk, f"moving latest failed: {reason}", attempt=attempt + 1)

    with log_context(release=release_pk):
        return _drive(self, run, (RegistryUnavailable,), give_up, attempt, ORCHESTRATION_LIMIT, lambda: "moving latest")


@shared_task(bind=True, acks_late=True, max_retries=5)
def announce_withdrawal(self, withdrawal_pk: int) -> str:
    """Tell the audit webhook and the admins about a withdrawal or a restore (enqueued on commit).
    A webhook that did not take it is called again with backoff, ``max_retries`` times; the e-mail
    goes once."""
    record = ReleaseWithdrawal.objects.select_related("release").filter(pk=withdrawal_pk).first()
    if record is None:
        return "gone"
    if announce(record, email=self.request.retries == 0):
        return "sent"
    if self.request.retries < self.max_retries:
        raise self.retry(countdown=min(2**self.request.retries * 5, 60))
    logger.error("release %s: the %s was never taken by the audit webhook", record.release, record.action)
    return "not sent"
