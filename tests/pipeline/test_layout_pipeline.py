"""A chart laid out like a real project, through the chart pipeline with real helm and a real registry:
pinned to the release's image digests in the package it pushes, or invalid when it deploys an image the
release did not publish."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid

import pytest
import yaml

from releases.charts import deployed_images
from releases.choices import ChartState, ImageState
from releases.models import DockerImage, HelmChart, ReleaseArtifact
from releases.pipelines.charts import run_chart_pipeline
from releases.services import plan_release, read_release_layout
from tests.fixtures.factories import digest_of, make_release
from tests.fixtures.real_project import commit_all, write_real_project
from tests.pipeline.test_chart_pipeline import chart_repository, registry

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def project(settings, tmp_path, oci_registry, helm_bin):
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/p{uuid.uuid4().hex[:10]}"
    settings.HELM_BIN = helm_bin
    settings.BUILD_WORKDIR = tmp_path / "builds"
    root = tmp_path / "threek8s"
    settings.SOURCE_REPOSITORY_URL = f"file://{root}"
    return root


def planned_with_pushed_images(commit_sha: str, version: str = "1.4.0") -> HelmChart:
    """A release planned from its layout whose two images are available (as if pushed)."""
    release = make_release(version, commit_sha=commit_sha)
    release = plan_release(release.pk, layout=read_release_layout(release))
    for image in release.images():
        DockerImage.objects.filter(pk=image.pk).update(
            state=ImageState.AVAILABLE, digest=digest_of(image.name), size=1234, build_date=release.release_date
        )
    return release.charts().get()


def rendered_images(helm_bin, helm_home, package: bytes, tmp_path) -> dict[str, str]:
    archive = tmp_path / "pulled.tgz"
    archive.write_bytes(package)
    out = subprocess.run(
        [helm_bin, "template", "threek8s", str(archive)], check=True, capture_output=True, text=True, env=helm_home
    ).stdout
    return {image.where: image.reference for image in deployed_images(d for d in yaml.safe_load_all(out) if d)}


def test_the_published_chart_deploys_the_release_images_by_digest(project, settings, helm_bin, helm_home, tmp_path):
    # Given a project whose chart takes its images from frontend.image / backend.image
    chart = planned_with_pushed_images(commit_all(write_real_project(project, "1.4.0")))

    # When the chart pipeline runs
    assert run_chart_pipeline(chart.pk) == ChartState.INDEXED

    # Then the values it stored and pushed point at the pushed images by digest
    chart.refresh_from_db()
    ns_host, ns_path = settings.REGISTRY_NAMESPACE.split("/", 1)
    frontend = DockerImage.objects.get(name="frontend", tag="1.4.0")
    assert chart.image_pins["frontend"] == {
        "values": "frontend.image",
        "registry": ns_host,
        "repository": f"{ns_path}/frontend",
        "tag": f"1.4.0@{frontend.digest}",
    }
    assert chart.values["backend"]["image"]["tag"] == f"1.4.0@{digest_of('backend')}"
    with tarfile.open(fileobj=io.BytesIO(bytes(chart.package))) as archive:
        names = archive.getnames()
        packaged_values = archive.extractfile("threek8s/values.yaml").read().decode()
    assert f'tag: "1.4.0@{frontend.digest}"' in packaged_values
    assert "# Overrides the image tag whose default is the chart appVersion." in packaged_values
    assert {"threek8s/templates/NOTES.txt", "threek8s/templates/tests/test-connection.yaml"} <= set(names)

    # And helm renders every namespace image pinned to the recorded digests
    images = rendered_images(helm_bin, helm_home, bytes(chart.package), tmp_path)
    ours = {where: ref for where, ref in images.items() if ref.startswith(settings.REGISTRY_NAMESPACE)}
    assert len(ours) == 4  # frontend, backend + its init container, the cleanup CronJob
    recorded = {image.repository: image.digest for image in DockerImage.objects.filter(tag="1.4.0")}
    for reference in ours.values():
        repository, _, digest = reference.partition("@")
        assert recorded[repository.rsplit(":", 1)[0]] == digest
    # The test hook's busybox is outside the namespace: a warning, not a refusal
    assert chart.warnings == [
        "Pod/threek8s-threek8s-test-connection: spec.containers[0].image: deploys busybox:1.36, outside "
        f"{settings.REGISTRY_NAMESPACE}; publish it under the namespace or allow it with CHART_ALLOWED_IMAGES"
    ]
    assert ReleaseArtifact.objects.get(helm_chart=chart).uri == chart.pinned_uri


def test_allowed_images_outside_the_namespace_are_no_warning(project, settings):
    settings.CHART_ALLOWED_IMAGES = ["docker.io/library/busybox:*"]
    chart = planned_with_pushed_images(commit_all(write_real_project(project, "1.4.0")))

    assert run_chart_pipeline(chart.pk) == ChartState.INDEXED

    chart.refresh_from_db()
    assert chart.warnings == []


def test_a_chart_deploying_an_image_the_release_did_not_publish_is_invalid_and_nothing_is_pushed(project, settings):
    # Given a chart whose metrics sidecar comes from the namespace but is not one of the release's images
    sidecar = f"{settings.REGISTRY_NAMESPACE}/metrics-exporter:1.4.0"
    template = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: metrics\nspec:\n  containers:\n"
        "    - name: exporter\n      image: {{ .Values.metrics.image }}\n"
    )
    write_real_project(
        project,
        "1.4.0",
        extra_values=f"metrics:\n  image: {sidecar}\n",
        extra_templates={"helm/threek8s/templates/metrics.yaml": template},
    )
    chart = planned_with_pushed_images(commit_all(project))

    # When the chart pipeline runs
    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    # Then the chart is invalid naming the image and listing what was published; nothing is stored or pushed
    chart.refresh_from_db()
    problem = next(p for p in chart.problems if "metrics-exporter" in p)
    assert problem.startswith(f"Pod/metrics: spec.containers[0].image: deploys {sidecar}, which this release did not")
    assert f"{settings.REGISTRY_NAMESPACE}/frontend:1.4.0@{digest_of('frontend')}" in problem
    assert (chart.values, chart.package_digest, chart.image_pins) == ({}, "", {})
    with registry(settings) as client:
        assert client.head_manifest(chart_repository(settings), "1.4.0") is None


def test_a_values_path_the_chart_lacks_is_invalid_saying_what_to_add(project):
    write_real_project(project, "1.4.0")
    layout = (project / ".release-registry.yaml").read_text().replace("values: backend.image", "values: api.image")
    (project / ".release-registry.yaml").write_text(layout)
    chart = planned_with_pushed_images(commit_all(project))

    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    chart.refresh_from_db()
    assert chart.problems[0].startswith("values.yaml: api.image is missing, not a mapping; add api.image")
