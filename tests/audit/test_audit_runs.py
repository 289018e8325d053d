"""The scheduled audit against a real docker-registry: tags moved, deleted or stripped of a platform
directly in the registry become findings with both digests; restoring them resolves the findings;
new findings are notified once; a failing registry yields unreachable, never missing."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from releases.charts import oci_tag
from releases.choices import ChartState, ImageState
from releases.models import AuditFinding, AuditRun, DockerImage, HelmChart
from releases.oci import RegistryClient
from releases.pipelines.audit import AuditAlreadyRunning, run_audit
from tests.audit.helpers import push_chart, push_image, put_index
from tests.fixtures.proxy import BreakingProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

Type = AuditFinding.Type


class Published:
    """Version 1.0.0 of both images and the chart, published in the registry and recorded in the database."""

    def __init__(self, client: RegistryClient, namespace: str, recorded_host: str | None = None) -> None:
        self.client = client
        self.path = namespace.split("/", 1)[1]
        if recorded_host:  # the rows name another host (e.g. a proxy) than the one pushed to
            namespace = f"{recorded_host}/{self.path}"
        self.images = {}
        for name in ("threek8s-frontend", "threek8s-backend"):
            pushed = push_image(client, f"{self.path}/{name}", "1.0.0")
            client.put_manifest(pushed.repository, "latest", *client.get_manifest(pushed.repository, "1.0.0")[:2])
            self.images[name] = pushed
            DockerImage.objects.create(
                name=name,
                tag="1.0.0",
                registry=namespace,
                state=ImageState.AVAILABLE,
                digest=pushed.digest,
                size=100,
                build_date=timezone.now(),
            )
        self.chart_repository = f"{self.path}/chart/threek8s"
        chart_digest = push_chart(client, self.chart_repository, oci_tag("1.0.0"), "1.0.0")
        HelmChart.objects.create(
            chart_version="1.0.0",
            app_version="1.0.0",
            registry=f"{namespace}/chart",
            state=ChartState.INDEXED,
            digest=chart_digest,
            indexed_at=timezone.now(),
        )

    def backend(self):
        return self.images["threek8s-backend"]


@pytest.fixture
def published(settings, oci_registry) -> Published:
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/a{uuid.uuid4().hex[:10]}"
    settings.AUDIT_WEBHOOK_URL = ""
    with RegistryClient(oci_registry.host) as client:
        yield Published(client, settings.REGISTRY_NAMESPACE)


def open_findings() -> set[tuple[str, str]]:
    return {(f.type, f.tag) for f in AuditFinding.objects.open()}


def test_every_published_tag_checks_out(published):
    run = run_audit(triggered_by="test")
    assert run.status == AuditRun.Status.SUCCEEDED
    assert run.tags_checked == 5  # two version tags, two latest tags, one chart version
    assert not AuditFinding.objects.exists()


def test_moved_deleted_and_stripped_tags_become_findings_and_resolve_when_restored(published):
    backend = published.backend()
    client = published.client
    # Given the version tag is overwritten with another index of the same platforms
    moved = put_index(client, backend.repository, "1.0.0", list(backend.entries), note="overwritten")
    run_audit()
    mismatch = AuditFinding.objects.open().get(type=Type.MISMATCH)
    assert (mismatch.expected, mismatch.actual) == (backend.digest, moved)
    assert mismatch.docker_image.name == "threek8s-backend"
    assert (Type.CHART_APP_VERSION_BROKEN, "1.0.0") in open_findings()

    # When the index is replaced by one without arm64
    put_index(client, backend.repository, "1.0.0", [backend.entry("amd64")])
    run_audit()
    drift = AuditFinding.objects.open().get(type=Type.PLATFORM_DRIFT)
    assert "linux/arm64" not in drift.actual and "linux/amd64" in drift.actual
    assert AuditFinding.objects.open().filter(type=Type.MISMATCH).count() == 1  # still the same finding

    # When the manifest the tag points at is deleted
    client.delete_manifest(backend.repository, client.head_manifest(backend.repository, "1.0.0").digest)
    run_audit()
    assert (Type.MISSING, "1.0.0") in open_findings()

    # Then restoring the original resolves every finding, and the history stays
    client.put_manifest(backend.repository, "1.0.0", *client.get_manifest(backend.repository, backend.digest)[:2])
    run = run_audit()
    assert open_findings() == set()
    assert run.resolved_findings == 2  # missing, and the chart's appVersion (mismatch and drift closed before)
    assert sorted(AuditFinding.objects.filter(resolved_at__isnull=False).values_list("type", flat=True)) == [
        Type.CHART_APP_VERSION_BROKEN,
        Type.MISMATCH,
        Type.MISSING,
        Type.PLATFORM_DRIFT,
    ]


def test_latest_behind_is_a_warning(published):
    frontend = published.images["threek8s-frontend"]
    put_index(published.client, frontend.repository, "latest", list(frontend.entries), note="older")
    run_audit()
    finding = AuditFinding.objects.open().get()
    assert (finding.type, finding.severity, finding.tag) == (Type.LATEST_BEHIND, "warning", "latest")


class WebhookReceiver:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(
                    (body, self.headers.get("X-Signature-256", ""), self.headers.get("X-Signature-Timestamp", ""))
                )
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_new_findings_are_notified_once_with_a_valid_signature(published, settings):
    receiver = WebhookReceiver()
    settings.AUDIT_WEBHOOK_URL, settings.AUDIT_WEBHOOK_SECRET = receiver.url, "audit-secret"
    backend = published.backend()
    put_index(published.client, backend.repository, "1.0.0", list(backend.entries), note="overwritten")

    run_audit()
    run_audit()

    types = sorted(json.loads(body)["finding"]["type"] for body, _, _ in receiver.calls)
    assert types == ["chart_app_version_broken", "mismatch"]
    for body, signature, timestamp in receiver.calls:
        assert abs(int(timestamp) - time.time()) < 300
        expected = "sha256=" + hmac.new(b"audit-secret", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected)
    receiver.server.shutdown()


def test_registry_failing_for_some_tags_yields_unreachable_for_those_only(settings, oci_registry):
    # Given a registry that answers 503 for the backend only, and an overwritten frontend tag
    proxy = BreakingProxy(oci_registry.url, lambda method, path, n: "503" if "threek8s-backend" in path else "forward")
    namespace = f"{oci_registry.host}/a{uuid.uuid4().hex[:10]}"
    try:
        with RegistryClient(oci_registry.host) as client:
            published = Published(client, namespace, recorded_host=proxy.host)
            frontend = published.images["threek8s-frontend"]
            put_index(client, frontend.repository, "1.0.0", list(frontend.entries), note="overwritten")

        # When the audit runs
        run_audit()
    finally:
        proxy.close()

    # Then the backend's tags are unreachable (never missing) and the frontend's mismatch is found
    unreachable = AuditFinding.objects.open().filter(type=Type.UNREACHABLE)
    assert {(f.repository.rsplit("/", 1)[1], f.tag) for f in unreachable} == {
        ("threek8s-backend", "1.0.0"),
        ("threek8s-backend", "latest"),
    }
    assert not AuditFinding.objects.filter(type=Type.MISSING).exists()
    mismatch = AuditFinding.objects.open().get(type=Type.MISMATCH)
    assert mismatch.repository.endswith("threek8s-frontend")
    assert mismatch.actual != mismatch.expected


def test_two_audits_never_overlap_and_a_crashed_run_is_closed_by_the_next(published, postgres_only):
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(7310, 0)")
        with pytest.raises(AuditAlreadyRunning):
            run_audit()
    finally:
        other.close()
    # A run whose batches still report progress is alive: the next audit does not start
    alive = AuditRun.objects.create(triggered_by="busy worker", heartbeat_at=timezone.now())
    with pytest.raises(AuditAlreadyRunning, match=f"audit {alive.pk} is running"):
        run_audit()
    # One silent for longer than a batch's hard time limit died with its worker
    AuditRun.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))

    run = run_audit()

    alive.refresh_from_db()
    assert alive.status == AuditRun.Status.CRASHED
    assert "no progress for" in alive.error
    assert run.status == AuditRun.Status.SUCCEEDED


def test_command_prints_a_summary_and_fails_while_findings_are_open(published):
    out = io.StringIO()
    call_command("audit_tags", stdout=out)
    assert "checked 5 tags" in out.getvalue()

    backend = published.backend()
    published.client.delete_manifest(backend.repository, backend.digest)
    with pytest.raises(SystemExit) as exited:
        call_command("audit_tags", stdout=(out := io.StringIO()))
    assert exited.value.code == 1
    assert "missing" in out.getvalue()


def test_api_starts_an_audit_and_lists_findings(published, settings):
    from releases.models import ApiToken

    token = ApiToken(name="ops", scope=ApiToken.Scope.WRITE)
    key = token.issue()
    token.save()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from registry.celery import app

    app.conf.task_always_eager = True
    try:
        response = api.post("/api/v1/audits/")
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 202
    assert api.get("/api/v1/audits/").json()["results"][0]["tags_checked"] == 5
    assert api.get("/api/v1/audit-findings/?open=true").json()["count"] == 0


def test_admin_front_page_shows_open_findings_prominently(published, admin_client):
    published.client.delete_manifest(published.backend().repository, published.backend().digest)
    run_audit()
    page = admin_client.get("/admin/").content.decode()
    assert "open critical finding" in page
    assert admin_client.get("/admin/releases/auditfinding/?resolved_at__isnull=True").status_code == 200


def test_the_audit_is_scheduled_every_interval_and_the_schedule_is_editable(settings, db):
    from django.apps import apps
    from django_celery_beat.models import PeriodicTask

    from releases.schedules import AUDIT_TASK_NAME, schedule_tag_audit

    PeriodicTask.objects.filter(name=AUDIT_TASK_NAME).delete()
    settings.AUDIT_INTERVAL_MINUTES = 7
    schedule_tag_audit(sender=apps.get_app_config("releases"))
    task = PeriodicTask.objects.get(name=AUDIT_TASK_NAME)
    assert (task.task, task.interval.every, task.interval.period) == (
        "releases.tasks.audit_published_tags",
        7,
        "minutes",
    )

    task.enabled = False  # an edit in the admin
    task.save()
    schedule_tag_audit(sender=apps.get_app_config("releases"))
    assert PeriodicTask.objects.get(name=AUDIT_TASK_NAME).enabled is False


def test_platforms_are_those_the_image_was_built_for_not_a_fixed_pair(published, settings):
    # Given a deployment that now builds linux/amd64 only, and version 1.1.0 published under it:
    # the backend's index lists just amd64 and its row records no platforms (as older rows), so
    # the audit takes IMAGE_PLATFORMS; the frontend recorded amd64 + arm64 (built before the change)
    settings.IMAGE_PLATFORMS = ["linux/amd64"]
    client = published.client
    built = {"threek8s-backend": ["amd64"], "threek8s-frontend": ["amd64", "arm64"]}
    for name, architectures in built.items():
        pushed = published.images[name]
        digest = put_index(client, pushed.repository, "1.1.0", [pushed.entry(a) for a in architectures])
        client.put_manifest(pushed.repository, "latest", *client.get_manifest(pushed.repository, digest)[:2])
        DockerImage.objects.create(
            name=name,
            tag="1.1.0",
            registry=settings.REGISTRY_NAMESPACE,
            state=ImageState.AVAILABLE,
            digest=digest,
            size=100,
            build_date=timezone.now(),
            platform_digests={} if name == "threek8s-backend" else {"linux/amd64": {}, "linux/arm64/v8": {}},
        )

    run_audit()

    # Then neither image drifts: each is held to the platforms it was built for
    assert open_findings() == set()

    # When the frontend's 1.1.0 index loses arm64, that is drift against what it was built for
    frontend = published.images["threek8s-frontend"]
    put_index(client, frontend.repository, "1.1.0", [frontend.entry("amd64")])
    run_audit()
    drift = AuditFinding.objects.open().get(type=Type.PLATFORM_DRIFT)
    assert (drift.tag, drift.expected, drift.actual) == ("1.1.0", "linux/amd64, linux/arm64", "linux/amd64")
