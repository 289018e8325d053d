"""GitHub release webhooks: signed deliveries create a release once; anything else changes nothing."""

from __future__ import annotations

import json

import pytest

from releases.github.events import compute_signature
from releases.models import GitHubDelivery, ReleaseVersion

pytestmark = pytest.mark.django_db

SECRET = "webhook-secret"
SHA = "b" * 40


def release_event(action: str = "published", tag: str = "v1.4.0", commitish: str = SHA) -> bytes:
    return json.dumps(
        {
            "action": action,
            "release": {
                "tag_name": tag,
                "target_commitish": commitish,
                "draft": False,
                "prerelease": False,
                "body": "### Features\n\n* **api:** list charts ([#3](https://github.com/o/r/issues/3))\n",
            },
            "repository": {"full_name": "stianfro/threek8s"},
        }
    ).encode()


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    settings.GITHUB_REPOSITORY = "stianfro/threek8s"
    settings.PUBLISH_ON_WEBHOOK = False


def deliver(client, body: bytes, *, delivery: str = "d-1", signature: str | None = None, event: str = "release"):
    headers = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": delivery}
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post("/hooks/github/", body, content_type="application/json", **headers)


def test_signed_release_event_creates_the_release(client):
    body = release_event()
    response = deliver(client, body, signature=compute_signature(SECRET, body))
    assert response.status_code == 201, response.json()
    release = ReleaseVersion.objects.get()
    assert (release.version, release.commit_sha, release.state) == ("1.4.0", SHA, "draft")
    assert "list charts" in release.changelog


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "sha1=abc", compute_signature("another-secret", release_event())],
    ids=["unsigned", "wrong-digest", "wrong-algorithm", "wrong-secret"],
)
def test_unsigned_or_mis_signed_delivery_gets_401_and_creates_nothing(client, signature):
    response = deliver(client, release_event(), signature=signature)
    assert response.status_code == 401
    assert not ReleaseVersion.objects.exists()
    assert not GitHubDelivery.objects.exists()


def test_tampered_body_gets_401(client):
    signature = compute_signature(SECRET, release_event())
    response = deliver(client, release_event(tag="v6.6.6"), signature=signature)
    assert response.status_code == 401
    assert not ReleaseVersion.objects.exists()


def test_the_same_delivery_twice_creates_one_release(client):
    body = release_event()
    first = deliver(client, body, signature=compute_signature(SECRET, body))
    second = deliver(client, body, signature=compute_signature(SECRET, body))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True
    assert ReleaseVersion.objects.count() == 1
    assert GitHubDelivery.objects.count() == 1


def test_another_delivery_of_the_same_release_is_idempotent(client):
    for delivery, action in (("d-1", "created"), ("d-2", "published"), ("d-3", "released")):
        body = release_event(action=action)
        deliver(client, body, delivery=delivery, signature=compute_signature(SECRET, body))
    assert ReleaseVersion.objects.count() == 1
    assert GitHubDelivery.objects.count() == 3


def test_ignored_events_say_why(client):
    body = release_event(action="deleted")
    response = deliver(client, body, signature=compute_signature(SECRET, body))
    assert response.status_code == 202
    assert "deleted" in response.json()["detail"]
    assert not ReleaseVersion.objects.exists()


def test_branch_as_target_is_resolved_by_the_tag_in_the_source_repository(client, settings, release_please_repo):
    # Given a release whose GitHub event names the branch, the annotated tag naming the release commit
    release_please_repo.commit("feat: charts page (#41)")
    tagged = release_please_repo.release("1.4.0", 43)
    release_please_repo.commit("feat: after the release (#44)")  # main moved on since
    settings.SOURCE_REPOSITORY_URL = release_please_repo.url

    # When the event arrives
    body = release_event(commitish="main")
    response = deliver(client, body, signature=compute_signature(SECRET, body))

    # Then the release is the tag's commit (peeled), with the PR its subject names
    assert response.status_code == 201, response.json()
    release = ReleaseVersion.objects.get()
    assert (release.commit_sha, release.pr_number) == (tagged, 43)


def test_branch_as_target_with_an_unknown_tag_is_refused_with_what_to_do(client, settings, release_please_repo):
    release_please_repo.release("1.3.0", 40)
    settings.SOURCE_REPOSITORY_URL = release_please_repo.url
    body = release_event(commitish="main")
    response = deliver(client, body, signature=compute_signature(SECRET, body))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "tag v1.4.0 is not in" in detail and "push the tag" in detail and "commit_sha" in detail
    assert not GitHubDelivery.objects.exists() and not ReleaseVersion.objects.exists()


def test_branch_as_target_without_a_source_repository_is_refused_with_what_to_do(client, settings):
    settings.SOURCE_REPOSITORY_URL = ""
    body = release_event(commitish="main")
    response = deliver(client, body, signature=compute_signature(SECRET, body))
    assert response.status_code == 422
    assert "SOURCE_REPOSITORY_URL is not set" in response.json()["detail"]
    assert not GitHubDelivery.objects.exists()


def test_pr_number_comes_from_the_release_commit_when_the_notes_name_none(client, settings, release_please_repo):
    sha = release_please_repo.release("1.4.0", 43)
    settings.SOURCE_REPOSITORY_URL = release_please_repo.url
    body = release_event(commitish=sha)
    response = deliver(client, body, signature=compute_signature(SECRET, body))
    assert response.status_code == 201, response.json()
    assert ReleaseVersion.objects.get().pr_number == 43


def test_no_secret_configured_refuses_everything(client, settings):
    settings.GITHUB_WEBHOOK_SECRET = ""
    body = release_event()
    assert deliver(client, body, signature=compute_signature("", body)).status_code == 401


def test_signed_release_is_published_when_configured(client, settings):
    settings.PUBLISH_ON_WEBHOOK = True
    body = release_event()
    response = deliver(client, body, signature=compute_signature(SECRET, body))
    assert response.status_code == 201
    assert ReleaseVersion.objects.get().state == "pending"
