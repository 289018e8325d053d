"""Request bodies and release notes have a size limit: an oversize body is refused with 413 before
it is parsed (declared or chunked), oversize notes with 400 wherever a release is written."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.test import APIClient

from releases import services
from releases.github.events import compute_signature
from releases.models import ApiToken, ReleaseVersion
from tests.fixtures.factories import COMMIT

REPOSITORY = {"full_name": "stianfro/threek8s"}

pytestmark = pytest.mark.django_db


@pytest.fixture
def write_key() -> str:
    token = ApiToken(name="ci", scope="write")
    key = token.issue()
    token.save()
    return key


@pytest.fixture
def writer(write_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    return client


def release_body(**fields) -> dict:
    return {"version": "1.4.0", "commit_sha": COMMIT, "changelog": "## 1.4.0\n", **fields}


def test_oversize_api_body_is_refused_with_413_naming_the_limit(writer, settings):
    settings.REQUEST_BODY_MAX_BYTES = 4096

    response = writer.post("/api/v1/releases/", release_body(release_notes="x" * 5000), format="json")

    assert response.status_code == 413
    assert "at most 4,096 bytes (4 KiB) (REQUEST_BODY_MAX_BYTES)" in response.json()["detail"]
    assert not ReleaseVersion.objects.exists()
    assert writer.post("/api/v1/releases/", release_body(), format="json").status_code == 201


def test_oversize_webhook_body_is_refused_with_413(client, settings):
    settings.REQUEST_BODY_MAX_BYTES = 1024
    settings.GITHUB_WEBHOOK_SECRET, settings.GITHUB_REPOSITORY = "secret", "stianfro/threek8s"
    body = json.dumps({"action": "published", "release": {"body": "x" * 2000}, "repository": REPOSITORY}).encode()

    response = client.post(
        "/hooks/github/",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="release",
        HTTP_X_GITHUB_DELIVERY="d-1",
        HTTP_X_HUB_SIGNATURE_256=compute_signature("secret", body),
    )

    assert response.status_code == 413
    assert "REQUEST_BODY_MAX_BYTES" in response.json()["detail"]


def asgi_post(path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """POST through the ASGI application with a body sent in chunks and no Content-Length, as a
    ``Transfer-Encoding: chunked`` request arrives."""
    from registry.asgi import application

    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the response is sent

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    # As Django's test clients do: keep the test's database connection (and transaction) open.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        async_to_sync(application)(scope, receive, send)
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_oversize_chunked_body_is_refused_by_the_bytes_read(settings):
    # DRF reads no body without a Content-Length; the webhook reads request.body whatever it declares.
    settings.REQUEST_BODY_MAX_BYTES = 4096
    settings.GITHUB_WEBHOOK_SECRET, settings.GITHUB_REPOSITORY = "secret", "stianfro/threek8s"
    body = json.dumps({"action": "published", "release": {"body": "x" * 10_000}, "repository": REPOSITORY}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"x-github-event", b"release"),
        (b"x-github-delivery", b"d-1"),
        (b"x-hub-signature-256", compute_signature("secret", body).encode()),
    ]

    status, answer = asgi_post("/hooks/github/", [body[i : i + 1000] for i in range(0, len(body), 1000)], headers)

    assert status == 413, answer
    assert b"at most 4,096 bytes (4 KiB) (REQUEST_BODY_MAX_BYTES)" in answer
    assert not ReleaseVersion.objects.exists()


def test_chunked_body_under_the_limit_is_read_whole(settings):
    settings.REQUEST_BODY_MAX_BYTES = 64 * 1024
    settings.GITHUB_WEBHOOK_SECRET, settings.GITHUB_REPOSITORY = "secret", "stianfro/threek8s"
    body = json.dumps({"action": "created", "release": {"body": "x" * 10_000}, "repository": REPOSITORY}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"x-github-event", b"release"),
        (b"x-github-delivery", b"d-2"),
        (b"x-hub-signature-256", compute_signature("secret", body).encode()),
    ]

    status, answer = asgi_post("/hooks/github/", [body[i : i + 1000] for i in range(0, len(body), 1000)], headers)

    assert status == 202, answer  # signature verified over the whole body; "created" is ignored


def test_oversize_changelog_is_a_400_over_the_api(writer, settings):
    settings.CHANGELOG_MAX_BYTES = 2048

    response = writer.post("/api/v1/releases/", release_body(changelog="é" * 1100), format="json")

    assert response.status_code == 400
    assert "at most 2 KiB (CHANGELOG_MAX_BYTES)" in response.json()["changelog"][0]
    assert "2,200 bytes" in response.json()["changelog"][0]
    assert not ReleaseVersion.objects.exists()


def test_default_limits_refuse_a_changelog_over_256_kib_with_400(writer):
    response = writer.post("/api/v1/releases/", release_body(release_notes="x" * (256 * 1024 + 1)), format="json")

    assert response.status_code == 400
    assert "256 KiB" in response.json()["release_notes"][0]


def test_webhook_refuses_oversize_notes(client, settings):
    settings.CHANGELOG_MAX_BYTES = 1024
    settings.GITHUB_WEBHOOK_SECRET, settings.GITHUB_REPOSITORY = "secret", "stianfro/threek8s"
    settings.PUBLISH_ON_WEBHOOK = False
    release = {"tag_name": "v1.4.0", "target_commitish": COMMIT, "draft": False, "prerelease": False}
    body = json.dumps(
        {"action": "published", "release": {**release, "body": "x" * 2000}, "repository": REPOSITORY}
    ).encode()

    response = client.post(
        "/hooks/github/",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="release",
        HTTP_X_GITHUB_DELIVERY="d-3",
        HTTP_X_HUB_SIGNATURE_256=compute_signature("secret", body),
    )

    assert response.status_code == 422
    assert "CHANGELOG_MAX_BYTES" in response.json()["detail"]
    assert not ReleaseVersion.objects.exists()


def test_create_release_refuses_oversize_notes():
    with pytest.raises(ValidationError) as refused:
        services.create_release(version="1.4.0", commit_sha=COMMIT, changelog="x" * (256 * 1024 + 1))

    assert "CHANGELOG_MAX_BYTES" in refused.value.message_dict["changelog"][0]
    assert not ReleaseVersion.objects.exists()


def test_admin_refuses_oversize_notes(client, settings):
    from django.contrib.auth.models import User
    from django.urls import reverse

    settings.CHANGELOG_MAX_BYTES = 1024
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    release = services.create_release(version="1.4.0", commit_sha=COMMIT)
    url = reverse("admin:releases_releaseversion_change", args=[release.pk])
    form = {
        "version": "1.4.0",
        "release_date_0": "2026-11-20",
        "release_date_1": "10:00:00",
        "commit_sha": COMMIT,
        "changelog": "x" * 2000,
        "release_notes": "",
        "artifacts-TOTAL_FORMS": "0",
        "artifacts-INITIAL_FORMS": "0",
        "releases-statetransition-content_type-object_id-TOTAL_FORMS": "0",
        "releases-statetransition-content_type-object_id-INITIAL_FORMS": "0",
    }

    response = client.post(url, form)

    assert response.status_code == 200  # the form again, with the error
    assert "CHANGELOG_MAX_BYTES" in response.content.decode()
    assert ReleaseVersion.objects.get().changelog == ""
