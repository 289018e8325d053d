"""Withdrawing and restoring a release against the running service: PostgreSQL, Redis, the real
docker-registry and a Celery worker. ``latest`` (the API and each image's OCI tag) goes back to the
newest release that is published and not withdrawn, ``index.yaml`` drops the version, nothing
published changes, and the record cannot be rewritten in the database. Restore undoes it."""

from __future__ import annotations

import time
import uuid

import pytest
import yaml
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from releases.choices import LatestTagState
from releases.models import ApiToken, LatestTag, ReleaseWithdrawal
from releases.oci import RegistryClient
from tests.trust.published import IMAGES, Shelf, database_snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def writer() -> APIClient:
    token = ApiToken(name="ci-write", scope="write")
    key = token.issue()
    token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def shelf(settings, oci_registry, celery_worker_factory):
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/w{uuid.uuid4().hex[:10]}"
    settings.AUDIT_WEBHOOK_URL = ""
    celery_worker_factory({"REGISTRY_NAMESPACE": settings.REGISTRY_NAMESPACE}, queues=("default",), concurrency=1)
    with RegistryClient(oci_registry.host) as client:
        yield Shelf(client, settings.REGISTRY_NAMESPACE)


def index_versions(client: APIClient) -> list[str]:
    response = client.get("/charts/index.yaml")
    assert response.status_code == 200
    return [entry["version"] for entry in yaml.safe_load(response.content)["entries"].get("threek8s", [])]


def latest_everywhere(shelf: Shelf, version: str) -> bool:
    """Each image's OCI latest is at ``version``'s digest and its LatestTag says current."""
    rows = {row.name: row for row in LatestTag.objects.all()}
    return all(
        shelf.live(name, "latest") == shelf.digests[(name, version)]
        and name in rows
        and (rows[name].state, rows[name].version) == (LatestTagState.CURRENT, version)
        for name in IMAGES
    )


def test_withdrawing_moves_latest_back_drops_the_chart_and_changes_nothing_published_and_restore_undoes_it(
    shelf, writer
):
    # Given 1.0.0 and 1.1.0 published, latest at 1.1.0
    shelf.publish("1.0.0")
    shelf.publish("1.1.0")
    versions = ["1.0.0", "1.1.0"]
    rows_before, tags_before = database_snapshot(), shelf.registry_snapshot(versions)
    assert writer.get("/api/v1/releases/latest/").json()["version"] == "1.1.0"
    assert all(shelf.live(name, "latest") == shelf.digests[(name, "1.1.0")] for name in IMAGES)

    # When 1.1.0 is withdrawn without a reason, then with one
    no_reason = writer.post("/api/v1/releases/1.1.0/withdraw/", {"reason": "  "}, format="json")
    withdrawn = writer.post(
        "/api/v1/releases/1.1.0/withdraw/", {"reason": "CVE-2026-0001 in the backend"}, format="json"
    )
    twice = writer.post("/api/v1/releases/1.1.0/withdraw/", {"reason": "again"}, format="json")

    # Then the blank reason is refused, the second withdrawal conflicts, and latest is 1.0.0 at once
    assert no_reason.status_code == 400 and "reason is required" in no_reason.json()["reason"][0]
    assert withdrawn.status_code == 200, withdrawn.json()
    assert withdrawn.json() | {"at": None} == {
        "version": "1.1.0",
        "action": "withdraw",
        "sequence": 1,
        "reason": "CVE-2026-0001 in the backend",
        "by": "token:ci-write",
        "at": None,
    }
    assert twice.status_code == 409 and "already withdrawn" in twice.json()["detail"]
    assert writer.get("/api/v1/releases/latest/").json()["version"] == "1.0.0"
    detail = writer.get("/api/v1/releases/1.1.0/").json()
    assert detail["state"] == "published"
    assert detail["withdrawal"]["reason"] == "CVE-2026-0001 in the backend"
    assert detail["withdrawal"]["by"] == "token:ci-write"
    assert index_versions(writer) == ["1.0.0"]
    # and the worker moves each image's OCI latest back to 1.0.0
    wait_until(lambda: latest_everywhere(shelf, "1.0.0"), 60, "latest moved back to 1.0.0")
    # and nothing published changed: rows, artifacts, every version tag (1.1.0's too)
    assert database_snapshot() == rows_before
    assert shelf.registry_snapshot(versions) == tags_before
    assert tags_before["threek8s-backend:1.1.0"] == shelf.digests[("threek8s-backend", "1.1.0")]
    # and the withdrawal record cannot be rewritten or erased in the database
    for statement in (
        "UPDATE releases_releasewithdrawal SET reason = 'nothing'",
        "DELETE FROM releases_releasewithdrawal",
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert ReleaseWithdrawal.objects.get().reason == "CVE-2026-0001 in the backend"

    # When it is restored
    restored = writer.post("/api/v1/releases/1.1.0/restore/", {"reason": "false alarm: not reachable"}, format="json")
    again = writer.post("/api/v1/releases/1.1.0/restore/", {"reason": "again"}, format="json")

    # Then latest (API, index, OCI tags) is 1.1.0 again, and the history has both records
    assert restored.status_code == 200 and restored.json()["sequence"] == 2
    assert again.status_code == 409 and "not withdrawn" in again.json()["detail"]
    assert writer.get("/api/v1/releases/latest/").json()["version"] == "1.1.0"
    assert writer.get("/api/v1/releases/1.1.0/").json()["withdrawal"] is None
    assert index_versions(writer) == ["1.1.0", "1.0.0"]
    wait_until(lambda: latest_everywhere(shelf, "1.1.0"), 60, "latest moved forward to 1.1.0")
    assert list(ReleaseWithdrawal.objects.values_list("sequence", "action")) == [(1, "withdraw"), (2, "restore")]
    assert database_snapshot() == rows_before
    assert shelf.registry_snapshot(versions) == tags_before


def test_when_every_release_is_withdrawn_latest_answers_404_and_the_tag_is_left_stranded(shelf, writer):
    # Given the only published release
    shelf.publish("1.0.0")
    digests = {name: shelf.live(name, "latest") for name in IMAGES}

    # When it is withdrawn
    response = writer.post("/api/v1/releases/1.0.0/withdraw/", {"reason": "leaks secrets"}, format="json")

    # Then releases/latest/ says why there is none, index.yaml lists nothing of it
    assert response.status_code == 200
    latest = writer.get("/api/v1/releases/latest/")
    assert latest.status_code == 404
    assert "every published release is withdrawn" in latest.json()["detail"]
    assert "1.0.0" in latest.json()["detail"] and "leaks secrets" in latest.json()["detail"]
    assert index_versions(writer) == []
    # and each image's latest is left where it was, its LatestTag stranded saying why
    rows = wait_until(
        lambda: (
            [r for r in LatestTag.objects.all() if r.state == LatestTagState.STRANDED]
            if LatestTag.objects.filter(state=LatestTagState.STRANDED).count() == len(IMAGES)
            else None
        ),
        60,
        "the latest tags stranded",
    )
    assert all("every published version" in row.reason for row in rows)
    assert {name: shelf.live(name, "latest") for name in IMAGES} == digests

    # When it is restored, latest is current again
    writer.post("/api/v1/releases/1.0.0/restore/", {"reason": "fixed upstream"}, format="json")
    wait_until(lambda: latest_everywhere(shelf, "1.0.0"), 60, "latest current again")
