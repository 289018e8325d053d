"""A worker killed (SIGKILL) in the middle of a push: the broker redelivers the task to a new
worker, which finishes the push with the digests recorded before the crash, without rebuilding."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from releases.choices import ImageState
from releases.models import DockerImage
from releases.oci import RegistryClient
from releases.tasks import build_image
from tests.fixtures.factories import make_release
from tests.fixtures.proxy import BreakingProxy
from tests.pipeline.test_image_pipeline import SourceRepo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_worker_killed_mid_push_is_redelivered_and_finishes_without_rebuilding(
    tmp_path, oci_registry, docker_host, multiarch_base_image, celery_worker_factory
):
    # Given a registry (behind a proxy) whose blob uploads are slow, so the push takes a while
    proxy = BreakingProxy(
        oci_registry.url,
        lambda method, path, served: "slow" if method == "PUT" and "/blobs/" in path else "forward",
        slow_seconds=1.5,
    )
    repo = SourceRepo(tmp_path / "source", multiarch_base_image.reference)
    sha = repo.backend()
    namespace = f"{proxy.host}/k{uuid.uuid4().hex[:8]}"
    env = {
        "REGISTRY_NAMESPACE": namespace,
        "SOURCE_REPOSITORY_URL": repo.url,
        "DOCKER_HOST": docker_host,
        "BUILD_WORKDIR": str(tmp_path / "builds"),
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    }
    make_release("1.0.0", commit_sha=sha)
    image = DockerImage.objects.create(name="threek8s-backend", tag="1.0.0", registry=namespace)
    try:
        first = celery_worker_factory(env)
        build_image.delay(image.pk)

        # When the worker is killed while it is pushing
        wait_until(lambda: DockerImage.objects.get(pk=image.pk).state == ImageState.PUSHING, 180, "the push")
        wait_until(lambda: any(r[0] == "PUT" and "/blobs/" in r[1] for r in proxy.requests), 30, "a blob upload")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        planned = DockerImage.objects.get(pk=image.pk).platform_digests

        # Then a new worker receives the task again and finishes it
        celery_worker_factory(env)
        wait_until(lambda: DockerImage.objects.get(pk=image.pk).state == ImageState.AVAILABLE, 180, "redelivery")
    finally:
        proxy.close()

    image.refresh_from_db()
    assert image.platform_digests == planned
    assert image.build_log.count("==> building linux/amd64") == 1
    assert image.state_transitions.filter(transition="start_build").count() == 1
    with RegistryClient(oci_registry.host) as client:
        assert client.head_manifest(f"{namespace.split('/', 1)[1]}/threek8s-backend", "1.0.0").digest == image.digest
