"""The sharded audit on real Celery workers: batches spread over the `audits` workers, one run
however many audit tasks start at once, and an audit never waits behind image builds."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from celery.result import AsyncResult
from django.db import connections
from django.utils import timezone

from releases.choices import ImageState
from releases.models import AuditFinding, AuditRun, DockerImage
from releases.oci import RegistryClient
from releases.tasks import audit_published_tags, build_image
from tests.audit.helpers import put_index
from tests.audit.test_audit_runs import Published
from tests.fixtures.proxy import BreakingProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def finished_run() -> AuditRun | None:
    return AuditRun.objects.exclude(status=AuditRun.Status.RUNNING).first()


def test_batches_spread_over_two_workers_check_every_tag_once(settings, oci_registry, celery_worker_factory, tmp_path):
    # Given five published tags, one of them moved in the registry, and batches of one tag
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/s{uuid.uuid4().hex[:10]}"
    with RegistryClient(oci_registry.host) as client:
        published = Published(client, settings.REGISTRY_NAMESPACE)
        backend = published.backend()
        moved = put_index(client, backend.repository, "1.0.0", list(backend.entries), note="moved")
    env = {"REGISTRY_NAMESPACE": settings.REGISTRY_NAMESPACE, "AUDIT_BATCH_SIZE": "1"}
    celery_worker_factory(env, queues=("audits",), concurrency=1)
    celery_worker_factory(env, queues=("audits",), concurrency=1)

    # When beat starts the audit
    audit_published_tags.delay(triggered_by="beat")

    # Then the run is split (two images, one chart, the latest tags) and every tag checked once
    run = wait_until(finished_run, 90, "the sharded audit")
    assert run.status == AuditRun.Status.SUCCEEDED, run.error
    assert (run.shards_total, run.shards_done, run.tags_checked) == (4, 4, 5)
    mismatch = AuditFinding.objects.open().get(type=AuditFinding.Type.MISMATCH)
    assert (mismatch.expected, mismatch.actual) == (backend.digest, moved)
    assert run.findings_by_type == {"mismatch": 1, "chart_app_version_broken": 1}
    assert run.new_findings == 2
    # and each worker's log lines name the task and the run they are about
    logs = "".join(path.read_text() for path in tmp_path.glob("worker-*.log"))
    lines = re.findall(rf"\[task=[0-9a-f-]{{36}} audit_run={run.pk}\] checking the (\w+) tags", logs)
    assert sorted(lines) == ["chart", "image", "image", "latest"]


def test_two_audit_tasks_at_once_give_one_run(settings, oci_registry, celery_worker_factory):
    # Given a registry that answers manifest requests slowly (each batch takes seconds)
    proxy = BreakingProxy(oci_registry.url, lambda method, path, n: "slow" if "/manifests/" in path else "forward")
    proxy.slow_seconds = 1.0
    namespace = f"{oci_registry.host}/d{uuid.uuid4().hex[:10]}"
    try:
        with RegistryClient(oci_registry.host) as client:
            Published(client, namespace, recorded_host=proxy.host)
        settings.REGISTRY_NAMESPACE = f"{proxy.host}/{namespace.split('/', 1)[1]}"
        celery_worker_factory({"REGISTRY_NAMESPACE": settings.REGISTRY_NAMESPACE}, queues=("audits",), concurrency=2)

        # When two beats (or beat and the admin) start an audit at the same moment
        first, second = audit_published_tags.delay(), audit_published_tags.delay()
        outcomes = [AsyncResult(task.id).get(timeout=60) for task in (first, second)]
        run = wait_until(finished_run, 90, "the audit")
    finally:
        proxy.close()

    # Then one run happened, and the other task skipped saying why
    assert AuditRun.objects.count() == 1
    assert run.status == AuditRun.Status.SUCCEEDED and run.tags_checked == 5
    assert sorted(next(iter(outcome)) for outcome in outcomes) == ["run", "skipped"]
    skipped = next(outcome["skipped"] for outcome in outcomes if "skipped" in outcome)
    assert "running" in skipped or "starting" in skipped


def test_an_audit_starts_within_seconds_while_the_builds_worker_is_busy(
    settings, oci_registry, celery_worker_factory, postgres_only
):
    # Given a builds worker busy with a build that cannot move on (its row is locked), another
    # build waiting behind it on the builds queue, and a worker of its own for audits
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/q{uuid.uuid4().hex[:10]}"
    with RegistryClient(oci_registry.host) as client:
        Published(client, settings.REGISTRY_NAMESPACE)
    stuck = DockerImage.objects.create(name="threek8s-backend", tag="2.0.0")
    waiting = DockerImage.objects.create(name="threek8s-frontend", tag="2.0.0")
    env = {"REGISTRY_NAMESPACE": settings.REGISTRY_NAMESPACE}
    celery_worker_factory(env, queues=("builds",), concurrency=1)
    celery_worker_factory(env, queues=("audits",), concurrency=1)
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT id FROM releases_dockerimage WHERE id = %s FOR UPDATE", [stuck.pk])
        build_image.delay(stuck.pk)
        build_image.delay(waiting.pk)
        time.sleep(2)  # the builds worker took the first build and blocks on the row

        # When an audit is enqueued
        enqueued = timezone.now()
        audit_published_tags.delay(triggered_by="api")

        # Then it starts (and ends) within seconds, while the builds are still held up
        run = wait_until(finished_run, 30, "the audit")
        assert (run.started - enqueued).total_seconds() < 5
        assert run.status == AuditRun.Status.SUCCEEDED and run.tags_checked == 5
        assert DockerImage.objects.get(pk=stuck.pk).state == ImageState.QUEUED
        assert DockerImage.objects.get(pk=waiting.pk).state == ImageState.QUEUED
    finally:
        holder.rollback()
        holder.close()
