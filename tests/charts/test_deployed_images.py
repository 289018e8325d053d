"""The images rendered manifests would run, in every workload kind, against what a release published."""

from __future__ import annotations

import pytest

from releases.charts import (
    DeployedImage,
    ImageReference,
    PublishedImage,
    deployed_image_problems,
    deployed_images,
)

NS = "ghcr.io/stianfro/threek8s"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
PUBLISHED = [PublishedImage(f"{NS}/frontend", "1.4.0", DIGEST), PublishedImage(f"{NS}/backend", "1.4.0", OTHER)]


def pod_spec(image: str, **lists) -> dict:
    return {"containers": [{"name": "main", "image": image}], **lists}


def manifests() -> list[dict]:
    frontend, backend = f"{NS}/frontend:1.4.0@{DIGEST}", f"{NS}/backend:1.4.0"
    template = {"template": {"spec": pod_spec(frontend)}}
    return [
        {"kind": "Deployment", "metadata": {"name": "web"}, "spec": template},
        {"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"template": {"spec": pod_spec(backend)}}},
        {"kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": template},
        {"kind": "ReplicaSet", "metadata": {"name": "rs"}, "spec": template},
        {
            "kind": "Job",
            "metadata": {"name": "migrate"},
            "spec": {"template": {"spec": pod_spec(backend, initContainers=[{"name": "wait", "image": "busybox"}])}},
        },
        {
            "kind": "CronJob",
            "metadata": {"name": "cleanup"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec(f"{NS}/backend@{OTHER}")}}}},
        },
        {
            "kind": "Pod",
            "metadata": {"name": "debug"},
            "spec": pod_spec(frontend, ephemeralContainers=[{"name": "shell", "image": "alpine:3.20"}]),
        },
        {"kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}},
    ]


def test_every_container_of_every_workload_kind_is_found_with_where_it_is():
    found = deployed_images(manifests())

    assert [image.where for image in found] == [
        "Deployment/web: spec.template.spec.containers[0].image",
        "StatefulSet/db: spec.template.spec.containers[0].image",
        "DaemonSet/agent: spec.template.spec.containers[0].image",
        "ReplicaSet/rs: spec.template.spec.containers[0].image",
        "Job/migrate: spec.template.spec.containers[0].image",
        "Job/migrate: spec.template.spec.initContainers[0].image",
        "CronJob/cleanup: spec.jobTemplate.spec.template.spec.containers[0].image",
        "Pod/debug: spec.containers[0].image",
        "Pod/debug: spec.ephemeralContainers[0].image",
    ]


def test_the_release_images_by_version_or_digest_pass_and_outside_images_are_warnings():
    problems, warnings = deployed_image_problems(deployed_images(manifests()), namespace=NS, published=PUBLISHED)

    assert problems == []
    assert warnings == [
        "Job/migrate: spec.template.spec.initContainers[0].image: deploys busybox, outside ghcr.io/stianfro/threek8s; "
        "publish it under the namespace or allow it with CHART_ALLOWED_IMAGES",
        "Pod/debug: spec.ephemeralContainers[0].image: deploys alpine:3.20, outside ghcr.io/stianfro/threek8s; "
        "publish it under the namespace or allow it with CHART_ALLOWED_IMAGES",
    ]


def test_allowed_globs_match_the_written_or_the_fully_qualified_reference():
    images = deployed_images(manifests())

    _, warnings = deployed_image_problems(
        images, namespace=NS, published=PUBLISHED, allowed=["docker.io/library/busybox*", "alpine:*"]
    )

    assert warnings == []


@pytest.mark.parametrize(
    ("reference", "why"),
    [
        (f"{NS}/sidecar:1.4.0", "which this release did not publish"),
        (f"{NS}/frontend:1.3.0", "at tag 1.3.0, not this release's 1.4.0"),
        (f"{NS}/frontend:1.4.0@{OTHER}", f"whose digest is not the one this release pushed ({DIGEST})"),
        (f"{NS}/frontend", "without a tag (that is latest)"),
        (f"{NS}/frontend:latest", "at tag latest"),
    ],
)
def test_an_image_under_the_namespace_the_release_did_not_publish_is_a_problem_naming_it(reference, why):
    images = [DeployedImage(reference, "Deployment/web: spec.template.spec.containers[0].image")]

    problems, warnings = deployed_image_problems(images, namespace=NS, published=PUBLISHED)

    assert warnings == []
    assert len(problems) == 1
    assert problems[0].startswith(f"Deployment/web: spec.template.spec.containers[0].image: deploys {reference}, {why}")
    assert f"this release published {NS}/frontend:1.4.0@{DIGEST}, {NS}/backend:1.4.0@{OTHER}" in problems[0]


def test_a_container_without_an_image_is_a_problem():
    documents = [{"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}]

    problems, _ = deployed_image_problems(deployed_images(documents), namespace=NS, published=PUBLISHED)

    assert problems == [
        "Pod/p: spec.containers[0].image: the container has no image; set the image in the chart's values"
    ]


@pytest.mark.parametrize(
    ("reference", "normalized"),
    [
        ("busybox", "docker.io/library/busybox"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("127.0.0.1:5000/ns/app:1.0.0@" + DIGEST, "127.0.0.1:5000/ns/app:1.0.0@" + DIGEST),
        ("localhost/app", "localhost/app"),
    ],
)
def test_references_are_read_as_a_runtime_reads_them(reference, normalized):
    assert ImageReference.parse(reference).normalized == normalized


def test_a_registry_port_is_not_a_tag():
    parsed = ImageReference.parse(f"127.0.0.1:5000/ns/app@{DIGEST}")
    assert (parsed.name, parsed.tag, parsed.digest) == ("127.0.0.1:5000/ns/app", "", DIGEST)
