"""A release end to end, with a real Celery worker process, PostgreSQL, Redis, dockerd,
docker-registry and helm: POST it, publish it, and it ends published with every artifact pinned
by the digest the registry serves."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from releases.choices import ImageState, ReleaseState
from releases.models import ApiToken, DockerImage, ReleaseVersion
from releases.oci import RegistryClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHANGELOG = """## [1.4.0](https://github.com/stianfro/threek8s/compare/v1.3.0...v1.4.0) (2026-11-26)


### Features

* **frontend:** cluster overview page ([#12](https://github.com/stianfro/threek8s/issues/12)) ([1a2b3c4](https://github.com/stianfro/threek8s/commit/1a2b3c4))

### Bug Fixes

* reconnect the websocket after a timeout ([#14](https://github.com/stianfro/threek8s/issues/14)) ([9a0b1c2](https://github.com/stianfro/threek8s/commit/9a0b1c2))
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def sample_source(tmp_path) -> tuple[str, str]:
    """The threek8s sample (examples/) committed to a real git repository at version 1.4.0."""
    repo = tmp_path / "threek8s"
    shutil.copytree(EXAMPLES, repo)
    chart_yaml = repo / "chart" / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("1.0.0", "1.4.0"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=CI", "add", "-A")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=CI", "commit", "-q", "-m", "chore: release 1.4.0")
    return f"file://{repo}", git(repo, "rev-parse", "HEAD")


@pytest.fixture
def service(
    tmp_path, oci_registry, docker_host, multiarch_base_image, helm_bin, celery_worker_factory, settings, sample_source
):
    """Settings for this process and a worker process, under a namespace of this test's own."""
    url, _ = sample_source
    overrides = {
        "REGISTRY_NAMESPACE": f"{oci_registry.host}/e2e{uuid.uuid4().hex[:8]}",
        "SOURCE_REPOSITORY_URL": url,
        "DOCKER_HOST": docker_host,
        "BUILD_WORKDIR": str(tmp_path / "builds"),
        "HELM_BIN": str(helm_bin),
        "IMAGE_BUILD_ARGS": f"BASE_IMAGE={multiarch_base_image.reference}",
        "IMAGE_SIZE_BUDGET_BYTES": str(50 * 1024 * 1024),
    }
    settings.REGISTRY_NAMESPACE = overrides["REGISTRY_NAMESPACE"]
    celery_worker_factory(overrides)
    token = ApiToken(name="ci", scope=ApiToken.Scope.WRITE)
    key = token.issue()
    token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def wait_for(version: str, states: set[str], timeout: float = 600) -> ReleaseVersion:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        release = ReleaseVersion.objects.get(version=version)
        if release.state in states:
            return release
        time.sleep(1)
    raise AssertionError(f"release {version} is still {release.state} after {timeout}s")


def create_release(client: APIClient, commit_sha: str) -> None:
    response = client.post(
        "/api/v1/releases/",
        {"version": "1.4.0", "commit_sha": commit_sha, "pr_number": 15, "changelog": CHANGELOG},
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_a_release_is_published_end_to_end(service, sample_source, settings):
    _, commit_sha = sample_source
    create_release(service, commit_sha)

    response = service.post("/api/v1/releases/1.4.0/publish/")
    assert response.status_code == 202
    release = wait_for("1.4.0", {ReleaseState.PUBLISHED, ReleaseState.FAILED})

    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    artifacts = service.get("/api/v1/releases/1.4.0/artifacts/").json()
    assert sorted(a["type"] for a in artifacts) == ["docker-backend", "docker-frontend", "helm-chart"]
    host = settings.REGISTRY_NAMESPACE.split("/", 1)[0]
    with RegistryClient(host) as registry:
        for artifact in artifacts:
            repository, _, digest = artifact["uri"].partition("@")
            tag = "1.4.0"
            live = registry.head_manifest(repository.split("/", 1)[1], tag)
            assert live is not None and live.digest == digest == artifact["checksum"], artifact
    changelog = service.get("/api/v1/releases/1.4.0/changelog/").json()
    assert [s["title"] for s in changelog["sections"]] == ["Features", "Bug Fixes"]

    again = service.post("/api/v1/releases/1.4.0/publish/")
    assert again.status_code == 409
    assert ReleaseVersion.objects.get(version="1.4.0").state == ReleaseState.PUBLISHED


def test_failed_image_fails_the_release_and_retry_does_not_rebuild_what_succeeded(service, sample_source):
    # Given the frontend points at a Dockerfile that does not exist
    _, commit_sha = sample_source
    create_release(service, commit_sha)
    DockerImage.objects.create(name="threek8s-frontend", tag="1.4.0", dockerfile_path="Dockerfile.missing")

    service.post("/api/v1/releases/1.4.0/publish/")
    release = wait_for("1.4.0", {ReleaseState.PUBLISHED, ReleaseState.FAILED})

    # Then the release failed naming the image, and the backend was pushed
    assert release.state == ReleaseState.FAILED
    assert release.failed_artifact == "threek8s-frontend"
    assert "Dockerfile.missing" in release.failure_reason
    backend = DockerImage.objects.get(name="threek8s-backend", tag="1.4.0")
    assert backend.state == ImageState.AVAILABLE

    # When the cause is fixed and the release retried
    frontend = DockerImage.objects.get(name="threek8s-frontend", tag="1.4.0")
    frontend.dockerfile_path = "Dockerfile"
    frontend.save(update_fields=["dockerfile_path"])
    assert service.post("/api/v1/releases/1.4.0/retry/").status_code == 202
    release = wait_for("1.4.0", {ReleaseState.PUBLISHED, ReleaseState.FAILED})

    # Then it is published and the backend was built once
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    backend.refresh_from_db()
    assert backend.state_transitions.filter(transition="start_build").count() == 1
    assert backend.build_log.count("==> building linux/amd64") == 1
