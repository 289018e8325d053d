"""values.yaml pinned to the pushed images by digest: comments and order kept, reproducible, and
rendered by real helm into references a runtime pulls by digest."""

from __future__ import annotations

import pytest

from releases.charts import ImagePin, deployed_images, pin_values, render_chart, validate_manifests
from tests.fixtures.real_project import VALUES, write_real_project

NS = "127.0.0.1:5000/acme"
FRONTEND = "sha256:" + "1" * 64
BACKEND = "sha256:" + "2" * 64
PINS = [
    ImagePin("frontend", "frontend.image", f"{NS}/frontend", "1.4.0", FRONTEND),
    ImagePin("backend", "backend.image", f"{NS}/backend", "1.4.0", BACKEND),
]


def test_pinning_rewrites_registry_repository_and_tag_keeping_comments_and_order():
    pinned = pin_values(VALUES.format(extra=""), PINS)

    assert pinned.problems == []
    assert pinned.pins == {
        "frontend": {
            "values": "frontend.image",
            "registry": "127.0.0.1:5000",
            "repository": "acme/frontend",
            "tag": f"1.4.0@{FRONTEND}",
        },
        "backend": {
            "values": "backend.image",
            "registry": "127.0.0.1:5000",
            "repository": "acme/backend",
            "tag": f"1.4.0@{BACKEND}",
        },
    }
    text = pinned.text
    assert "# Overrides the image tag whose default is the chart appVersion." in text
    assert "# Nightly cleanup with the backend image." in text
    assert f'tag: "1.4.0@{FRONTEND}"' in text
    assert text.index("frontend:") < text.index("backend:") < text.index("tests:")
    assert "pullPolicy: IfNotPresent" in text and "image: busybox:1.36" in text


def test_pinning_is_reproducible_byte_for_byte():
    first = pin_values(VALUES.format(extra=""), PINS).text
    assert pin_values(VALUES.format(extra=""), PINS).text == first
    assert pin_values(first, PINS).text == first  # pinning pinned values changes nothing


def test_without_a_registry_key_the_repository_takes_the_whole_reference():
    pinned = pin_values(
        "app:\n  image:\n    repository: acme/app\n",
        [ImagePin("frontend", "app.image", f"{NS}/frontend", "1.4.0", FRONTEND)],
    )

    assert pinned.pins["frontend"] == {
        "values": "app.image",
        "repository": f"{NS}/frontend",
        "tag": f"1.4.0@{FRONTEND}",
    }


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ("backend:\n  image:\n    repository: x\n", "frontend.image is missing, not a mapping"),
        ("frontend:\n  image: ghcr.io/x:1\nbackend:\n  image: {}\n", "frontend.image is a str, not a mapping"),
    ],
)
def test_a_values_path_that_is_not_a_mapping_is_a_problem_saying_what_to_add(values, named):
    pinned = pin_values(values, PINS)

    assert named in pinned.problems[0]
    assert "images.frontend.values in .release-registry.yaml" in pinned.problems[0]
    assert pinned.text == values


def test_helm_renders_the_pinned_values_as_references_pulled_by_digest(tmp_path, helm_bin):
    chart = write_real_project(tmp_path, "1.4.0") / "helm" / "threek8s"
    values = chart / "values.yaml"
    values.write_text(pin_values(values.read_text(), PINS).text)

    documents = render_chart(helm_bin, chart)

    assert validate_manifests(documents) == []
    images = {image.where.replace("threek8s-threek8s-", ""): image.reference for image in deployed_images(documents)}
    frontend, backend = f"{NS}/frontend:1.4.0@{FRONTEND}", f"{NS}/backend:1.4.0@{BACKEND}"
    assert images == {
        "Deployment/frontend: spec.template.spec.containers[0].image": frontend,
        "Deployment/backend: spec.template.spec.initContainers[0].image": backend,
        "Deployment/backend: spec.template.spec.containers[0].image": backend,
        "CronJob/cleanup: spec.jobTemplate.spec.template.spec.containers[0].image": backend,
        "Pod/test-connection: spec.containers[0].image": "busybox:1.36",
    }
