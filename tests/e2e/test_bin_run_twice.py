"""``bin/run``'s steps, twice on the same checkout, against PostgreSQL, Redis, docker-registry,
dockerd, helm and a worker: the first run makes a signing key and publishes the sample release
signed; the second keeps the key, serves what is published and says so, and changes nothing."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command

from releases.choices import ReleaseState
from releases.models import ChartDependency, DockerImage, HelmChart, ReleaseArtifact, ReleaseVersion
from releases.signing import key_id, load_public_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def rows() -> dict[str, list[dict]]:
    return {
        model.__name__: [dict(row) for row in model.objects.order_by("pk").values()]
        for model in (ReleaseVersion, ReleaseArtifact, DockerImage, HelmChart, ChartDependency)
    }


def bin_run_steps(var) -> str:
    """What bin/run runs after starting the services: migrate, the demo's signing key, the sample."""
    out = io.StringIO()
    call_command("migrate", "--no-input", verbosity=0, stdout=out)
    call_command("generate_signing_key", str(var / "signing"), if_missing=True, stdout=out)
    call_command("publish_sample", source=str(var / "sample-source"), timeout=600, stdout=out)
    return out.getvalue()


def test_a_second_bin_run_serves_what_is_published_signed_by_the_same_key(
    tmp_path, settings, oci_registry, docker_host, helm_bin, celery_worker_factory
):
    # Given bin/run's environment: a var/ directory, the sample source in it, a worker signing with
    # the key bin/run makes there
    var = tmp_path / "var"
    source = var / "sample-source"
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/run{uuid.uuid4().hex[:8]}"
    settings.SOURCE_REPOSITORY_URL = f"file://{source}"
    key = var / "signing" / "cosign.key"
    worker = {
        "REGISTRY_NAMESPACE": settings.REGISTRY_NAMESPACE,
        "SOURCE_REPOSITORY_URL": settings.SOURCE_REPOSITORY_URL,
        "DOCKER_HOST": docker_host,
        "BUILD_WORKDIR": str(tmp_path / "builds"),
        "HELM_BIN": str(helm_bin),
        "IMAGE_BUILD_ARGS": f"BASE_IMAGE={oci_registry.host}/base/tiny:1",
        "SIGNING_KEY": str(key),
    }

    # When bin/run runs for the first time (the key is made before the worker starts, as there)
    call_command("generate_signing_key", str(var / "signing"), if_missing=True, stdout=io.StringIO())
    celery_worker_factory(worker)
    first = bin_run_steps(var)

    # Then the sample is published, every image signed by the demo's key
    release = ReleaseVersion.objects.get(version="1.0.0")
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    demo_key = key_id(load_public_key((var / "signing" / "cosign.pub").read_bytes()))
    assert {image.signed_with for image in release.images()} == {demo_key}
    assert "release 1.0.0 published" in first and "2 of 2 images signed" in first
    published = rows()

    # When bin/run runs again on the same checkout
    second = bin_run_steps(var)

    # Then it keeps the key, says the release is already published, and changes nothing
    assert f"using the key pair already in {var / 'signing'} (key id {demo_key})" in second
    assert "already published" in second and "2 of 2 images signed" in second
    assert rows() == published
