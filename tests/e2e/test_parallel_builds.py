"""Builds hold a lock per Docker engine, not one for the deployment: two workers with an engine
each build a release's two images at the same time."""

from __future__ import annotations

import time
import uuid

import pytest

from releases import services
from releases.choices import ImageState, ReleaseState
from releases.database.locks import engine_key, engine_lock
from releases.models import DockerImage, StateTransition
from tests.e2e.test_release_flow import sample_source, wait_for  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def building_interval(image: DockerImage):
    rows = StateTransition.objects.filter(content_type__model="dockerimage", object_id=image.pk)
    return rows.get(target="building").at, rows.get(source="building").at


def test_engine_locks_are_keyed_by_the_engine():
    assert engine_key("unix:///run/a/docker.sock") == engine_key("unix:///run/a/docker.sock")
    assert engine_key("unix:///run/a/docker.sock") != engine_key("unix:///run/b/docker.sock")
    assert -(2**31) <= engine_key("tcp://10.0.0.7:2376") < 2**31  # PostgreSQL's int4 key


def test_two_workers_with_an_engine_each_build_both_images_at_once(
    tmp_path,
    settings,
    oci_registry,
    running_dockerd,
    second_dockerd,
    multiarch_base_image,
    helm_bin,
    celery_worker_factory,
    sample_source,  # noqa: F811
):
    # Given two workers, each with a Docker engine of its own
    url, commit_sha = sample_source
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/par{uuid.uuid4().hex[:8]}"
    common = {
        "REGISTRY_NAMESPACE": settings.REGISTRY_NAMESPACE,
        "SOURCE_REPOSITORY_URL": url,
        "HELM_BIN": str(helm_bin),
        "IMAGE_BUILD_ARGS": f"BASE_IMAGE={multiarch_base_image.reference}",
    }
    for number, engine in enumerate((running_dockerd, second_dockerd)):
        env = {**common, "DOCKER_HOST": engine.base_url, "BUILD_WORKDIR": str(tmp_path / f"builds{number}")}
        celery_worker_factory(env, concurrency=1)

    # When a release is published while the first engine is busy (its lock held by someone else)
    release = services.create_release(version="1.4.0", commit_sha=commit_sha, pr_number=1, changelog="## 1.4.0")
    with engine_lock(running_dockerd.base_url):
        services.publish_release(release.pk)

        # Then the second engine builds an image meanwhile: the lock is the first engine's only
        built = wait_until(lambda: DockerImage.objects.filter(state=ImageState.AVAILABLE).first(), 300)
        assert DockerImage.objects.exclude(pk=built.pk).get().state == ImageState.BUILDING

    # and once the first engine is free the release is published, its images building at the same time
    release = wait_for("1.4.0", {ReleaseState.PUBLISHED, ReleaseState.FAILED})
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    (a_start, a_end), (b_start, b_end) = (building_interval(image) for image in DockerImage.objects.all())
    overlap = (min(a_end, b_end) - max(a_start, b_start)).total_seconds()
    assert overlap > 0, f"builds did not overlap: {a_start}..{a_end} and {b_start}..{b_end}"


def wait_until(check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    states = list(DockerImage.objects.values_list("name", "state", "progress"))
    raise AssertionError(f"no image became available in {timeout:.0f} s: {states}")
