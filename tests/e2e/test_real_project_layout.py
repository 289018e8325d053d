"""A project laid out like a real one (``tests/fixtures/real_project.py``: images ``frontend`` and
``backend``, the chart under ``helm/threek8s/`` taking its images from registry/repository/tag values)
published end to end with a real Celery worker, PostgreSQL, Redis, dockerd, docker-registry and helm:
the pulled chart renders references pinned to the pushed digests, which the registry serves; a chart
that deploys an image the release did not publish is refused before anything of it is pushed."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import yaml
from rest_framework.test import APIClient

from releases.charts import deployed_images
from releases.choices import ArtifactType, ChartState, ReleaseState
from releases.models import ApiToken, DockerImage, HelmChart, ReleaseVersion
from releases.oci import RegistryClient
from tests.fixtures.real_project import commit_all, write_real_project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

VERSION = "1.4.0"
SIDECAR_TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  name: metrics
spec:
  containers:
    - name: exporter
      image: {{ .Values.metrics.image }}
"""


@pytest.fixture
def namespace(oci_registry) -> str:
    return f"{oci_registry.host}/real{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publish(tmp_path, namespace, docker_host, multiarch_base_image, helm_bin, celery_worker_factory, settings):
    """Commit ``project`` (a folder written by the test), start a worker on it, create and publish 1.4.0."""

    def run(project) -> ReleaseVersion:
        commit_sha = commit_all(project, f"chore(main): release {VERSION}")
        overrides = {
            "REGISTRY_NAMESPACE": namespace,
            "SOURCE_REPOSITORY_URL": f"file://{project}",
            "DOCKER_HOST": docker_host,
            "BUILD_WORKDIR": str(tmp_path / "builds"),
            "HELM_BIN": str(helm_bin),
            "IMAGE_BUILD_ARGS": f"BASE_IMAGE={multiarch_base_image.reference}",
            "IMAGE_SIZE_BUDGET_BYTES": str(50 * 1024 * 1024),
            "CHART_ALLOWED_IMAGES": "docker.io/library/busybox:*",
        }
        settings.REGISTRY_NAMESPACE = namespace
        settings.SOURCE_REPOSITORY_URL = overrides["SOURCE_REPOSITORY_URL"]
        settings.BUILD_WORKDIR = tmp_path / "planning"
        celery_worker_factory(overrides)
        token = ApiToken(name="ci", scope=ApiToken.Scope.WRITE)
        key = token.issue()
        token.save()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        created = client.post("/api/v1/releases/", {"version": VERSION, "commit_sha": commit_sha}, format="json")
        assert created.status_code == 201, created.json()
        assert client.post(f"/api/v1/releases/{VERSION}/publish/").status_code == 202
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            release = ReleaseVersion.objects.get(version=VERSION)
            if release.state in (ReleaseState.PUBLISHED, ReleaseState.FAILED):
                return release
            time.sleep(1)
        raise AssertionError(f"release {VERSION} is still {release.state} after 600s")

    return run


def skopeo_inspect(reference: str) -> dict:
    completed = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"skopeo inspect {reference}: {completed.stderr}"
    return json.loads(completed.stdout)


def test_a_real_project_publishes_a_chart_that_deploys_its_images_by_digest(
    publish, namespace, tmp_path, helm_bin, helm_home
):
    # Given a real-project layout committed at 1.4.0
    project = write_real_project(tmp_path / "threek8s", VERSION)

    # When it is published
    release = publish(project)

    # Then it is published with images named by its layout
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    by_type = {a.type: a for a in release.artifacts.all()}
    assert by_type[ArtifactType.DOCKER_FRONTEND].docker_image.name == "frontend"
    assert by_type[ArtifactType.DOCKER_BACKEND].docker_image.name == "backend"
    recorded = {image.repository: image.digest for image in DockerImage.objects.filter(tag=VERSION)}
    assert set(recorded) == {f"{namespace}/frontend", f"{namespace}/backend"}
    chart = HelmChart.objects.get(app_version=VERSION)
    assert chart.state == ChartState.INDEXED and chart.warnings == []

    # And the chart pulled from the registry renders every namespace image pinned by digest
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    subprocess.run(
        [
            helm_bin,
            "pull",
            f"oci://{namespace}/chart/threek8s",
            "--version",
            VERSION,
            "--plain-http",
            "-d",
            str(pulled),
        ],
        check=True,
        capture_output=True,
        env=helm_home,
    )
    rendered = subprocess.run(
        [helm_bin, "template", "threek8s", str(pulled / f"threek8s-{VERSION}.tgz")],
        check=True,
        capture_output=True,
        text=True,
        env=helm_home,
    ).stdout
    references = {image.reference for image in deployed_images(d for d in yaml.safe_load_all(rendered) if d)}
    ours = sorted(reference for reference in references if reference.startswith(f"{namespace}/"))
    assert ours == sorted(f"{repository}:{VERSION}@{digest}" for repository, digest in recorded.items())
    assert references - set(ours) == {"busybox:1.36"}  # the helm test hook

    # And the registry serves each rendered reference at the recorded digest. This skopeo (1.9)
    # refuses references holding both a tag and a digest, so the two halves are inspected: the digest
    # (what a runtime pulls) and the tag must name the same recorded manifest.
    for reference in ours:
        name_and_tag, _, digest = reference.partition("@")
        repository = name_and_tag.rsplit(":", 1)[0]
        by_digest = skopeo_inspect(f"{repository}@{digest}")
        by_tag = skopeo_inspect(name_and_tag)
        assert by_digest["Digest"] == by_tag["Digest"] == recorded[repository] == digest
    # The backend was built with its layout's build args
    backend = skopeo_inspect(f"{namespace}/backend@{recorded[f'{namespace}/backend']}")
    assert backend["Labels"]["app.module"] == "threek8s.api"


def test_a_chart_deploying_an_image_the_release_did_not_publish_is_invalid_and_not_pushed(publish, namespace, tmp_path):
    # Given a chart whose metrics sidecar is under the namespace but not built by this release
    sidecar = f"{namespace}/metrics-exporter:{VERSION}"
    project = write_real_project(
        tmp_path / "threek8s",
        VERSION,
        extra_values=f"metrics:\n  image: {sidecar}\n",
        extra_templates={"helm/threek8s/templates/metrics.yaml": SIDECAR_TEMPLATE},
    )

    # When it is published
    release = publish(project)

    # Then the release failed on its chart, naming the image; the images were pushed, the chart not
    assert release.state == ReleaseState.FAILED
    assert f"deploys {sidecar}, which this release did not publish" in release.failure_reason
    chart = HelmChart.objects.get(app_version=VERSION)
    assert chart.state == ChartState.INVALID and chart.package_digest == ""
    host, _, path = namespace.partition("/")
    with RegistryClient(host) as registry:
        assert registry.head_manifest(f"{path}/chart/threek8s", VERSION) is None
        assert registry.head_manifest(f"{path}/frontend", VERSION) is not None
