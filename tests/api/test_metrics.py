"""``/metrics`` of the live app: gunicorn (two workers) and a Celery worker sharing
``PROMETHEUS_MULTIPROC_DIR``, so what the worker counted is served by whichever web process
answers, next to the gauges computed from PostgreSQL and Redis at scrape time."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import redis
from django.conf import settings as django_settings

from releases.models import AuditRun
from releases.oci import RegistryClient
from releases.tasks import audit_published_tags
from tests.api.test_readiness import free_port
from tests.audit.helpers import put_index
from tests.audit.test_audit_runs import Published
from tests.fixtures.celery_worker import ROOT, worker_environment
from tests.fixtures.factories import make_release

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if match and match.group(1) == name and ",".join(sorted((match.group(2) or "").split(","))) == wanted:
            return float(match.group(3))
    raise AssertionError(f"no sample {name}{{{wanted}}} in:\n{text}")


@pytest.fixture
def live_app(tmp_path, settings, oci_registry, celery_worker_factory):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/m{uuid.uuid4().hex[:10]}"
    overrides = {"REGISTRY_NAMESPACE": settings.REGISTRY_NAMESPACE, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    celery_worker_factory(overrides, queues=("audits", "default"))
    port = free_port()
    env = worker_environment({**overrides, "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false"})
    log = (tmp_path / "gunicorn.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "registry/gunicorn_conf.py", "registry.wsgi"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health/").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield base
    web.terminate()
    web.wait(timeout=30)
    log.close()


def test_metrics_of_the_live_app(live_app, settings, oci_registry):
    # Given three releases, a published image moved in the registry, an audit run by the
    # worker, and two tasks waiting on the builds queue (no builds worker)
    for version, state in (("0.1.0", "draft"), ("0.2.0", "draft"), ("0.3.0", "pending")):
        make_release(version, state=state)
    with RegistryClient(oci_registry.host) as client:
        published = Published(client, settings.REGISTRY_NAMESPACE)
        backend = published.backend()
        put_index(client, backend.repository, "1.0.0", list(backend.entries), note="moved")
    audit_published_tags.delay(triggered_by="test")
    deadline = time.monotonic() + 60
    while not AuditRun.objects.filter(status=AuditRun.Status.SUCCEEDED).exists():
        assert time.monotonic() < deadline, "the audit did not finish"
        time.sleep(0.2)
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.delete("builds")
    broker.lpush("builds", b"{}", b"{}")
    try:
        # When Prometheus scrapes
        response = httpx.get(f"{live_app}/metrics")
    finally:
        broker.delete("builds")

    # Then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert sample(text, "release_registry_releases", state="draft") == 2
    assert sample(text, "release_registry_releases", state="pending") == 1
    assert sample(text, "release_registry_releases", state="published") == 0
    assert sample(text, "release_registry_audit_tags_checked_total") == 5  # counted by the worker
    assert sample(text, "release_registry_audit_open_findings", type="mismatch") == 1
    assert sample(text, "release_registry_audit_open_findings", type="chart_app_version_broken") == 1
    assert sample(text, "release_registry_queue_length", queue="builds") == 2
    assert sample(text, "release_registry_broker_up") == 1


def test_stage_timers_observe_only_stages_that_ended_well_and_failures_are_counted_by_kind(db):
    from celery.exceptions import SoftTimeLimitExceeded

    from releases.observability import metrics

    before = metrics.STAGE_SECONDS.labels(kind="image", stage="scan")._sum.get()
    with metrics.timed("image", "scan"):
        time.sleep(0.01)
    with pytest.raises(RuntimeError), metrics.timed("image", "scan"):
        raise RuntimeError("scan failed")
    assert 0.01 <= metrics.STAGE_SECONDS.labels(kind="image", stage="scan")._sum.get() - before < 1

    try:
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded as limit:
            raise RuntimeError("push interrupted") from limit
    except RuntimeError as error:
        assert metrics.failure_kind(error) == "time_limit"
    assert metrics.failure_kind(ValueError("odd JSON")) == "unexpected"
    metrics.task_failed("build_image", "time_limit")

    text = metrics.exposition().decode()
    assert 'release_registry_stage_duration_seconds_count{kind="image",stage="scan"} ' in text
    assert 'release_registry_task_failures_total{kind="time_limit",task="build_image"} ' in text
    assert "# TYPE release_registry_pushed_bytes_total counter" in text
