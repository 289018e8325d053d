"""Moving ``latest`` after a withdrawal ends in a named state when it cannot: ``moving`` while the
registry does not answer and the task retries, ``failed`` naming the error when it gives up or the
registry refuses. Against the real docker-registry and an address where nothing listens."""

from __future__ import annotations

import socket
import uuid

import pytest
from django.utils import timezone

from releases.choices import ImageState, LatestTagState, ReleaseState
from releases.models import DockerImage, LatestTag, ReleaseVersion
from releases.oci import RegistryUnavailable
from releases.tasks import align_latest_tags
from releases.trust.withdrawal import withdraw_release
from tests.fixtures.factories import COMMIT, digest_of

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def withdrawn_release(namespace: str) -> ReleaseVersion:
    """1.0.0 and 1.1.0 recorded under ``namespace`` (nothing pushed), 1.1.0 withdrawn."""
    for version in ("1.0.0", "1.1.0"):
        release = ReleaseVersion.objects.create(version=version, commit_sha=COMMIT)
        DockerImage.objects.create(
            name="threek8s-backend",
            tag=version,
            registry=namespace,
            state=ImageState.AVAILABLE,
            digest=digest_of(f"{namespace}:{version}"),
            size=10,
            build_date=timezone.now(),
        )
        ReleaseVersion.objects.filter(pk=release.pk).update(state=ReleaseState.PUBLISHED, published_at=timezone.now())
    withdraw_release("1.1.0", reason="bad", actor="alice")
    return ReleaseVersion.objects.get(version="1.1.0")


def test_an_unreachable_registry_is_retried_as_moving_then_ends_failed_naming_it(settings):
    settings.REGISTRY_INSECURE_HOSTS = [*settings.REGISTRY_INSECURE_HOSTS, f"127.0.0.1:{closed_port()}"]
    namespace = f"{settings.REGISTRY_INSECURE_HOSTS[-1]}/gone"
    release = withdrawn_release(namespace)

    # (eager: a retry runs at once, its countdown skipped; from the next-to-last attempt)
    result = align_latest_tags.apply(args=[release.pk], kwargs={"attempt": align_latest_tags.max_retries - 1})

    row = LatestTag.objects.get()
    assert result.result == "failed"
    assert row.state == LatestTagState.FAILED
    assert "moving latest failed" in row.reason and "is unavailable" in row.reason
    assert "gave up after 5 retries" in row.reason
    assert row.attempts == align_latest_tags.max_retries + 1


def test_while_the_registry_does_not_answer_latest_is_moving_with_the_reason(settings):
    settings.REGISTRY_INSECURE_HOSTS = [*settings.REGISTRY_INSECURE_HOSTS, f"127.0.0.1:{closed_port()}"]
    release = withdrawn_release(f"{settings.REGISTRY_INSECURE_HOSTS[-1]}/gone")

    # Called directly, a task's retry re-raises the error instead of enqueueing the next attempt.
    with pytest.raises(RegistryUnavailable):
        align_latest_tags(release.pk)

    row = LatestTag.objects.get()
    assert (row.state, row.attempts) == (LatestTagState.MOVING, 1) and "retry 1 of 5" in row.reason


def test_a_registry_refusal_ends_failed_at_once_naming_it(settings, oci_registry):
    namespace = f"{oci_registry.host}/w{uuid.uuid4().hex[:8]}"
    release = withdrawn_release(namespace)  # 1.0.0's manifest was never pushed

    result = align_latest_tags.apply(kwargs={"release_pk": release.pk})

    row = LatestTag.objects.get()
    assert result.state == "SUCCESS"
    assert row.state == LatestTagState.FAILED
    assert "moving threek8s-backend:latest to 1.0.0 failed" in row.reason and "not found" in row.reason
