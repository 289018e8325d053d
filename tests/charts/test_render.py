"""render_chart with real helm; validate_manifests against the bundled Kubernetes schemas (offline)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from releases.charts import (
    DEFAULT_KUBERNETES_VERSION,
    RenderFailed,
    bundled_kubernetes_versions,
    render_chart,
    schema_version_for,
    validate_manifests,
)
from tests.charts.conftest import EXAMPLE_CHART


def by_kind_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in docs}


@pytest.fixture(scope="module")
def example_docs(helm_bin: str) -> list[dict[str, Any]]:
    return render_chart(helm_bin, EXAMPLE_CHART)


def deployment(docs: list[dict[str, Any]], name: str = "threek8s-frontend") -> dict[str, Any]:
    return copy.deepcopy(by_kind_name(docs)[f"Deployment/{name}"])


def test_example_chart_renders_and_validates_clean(example_docs: list[dict[str, Any]]) -> None:
    assert sorted(by_kind_name(example_docs)) == [
        "Deployment/threek8s-backend",
        "Deployment/threek8s-frontend",
        "Service/threek8s-backend",
        "Service/threek8s-frontend",
    ]
    assert validate_manifests(example_docs) == []
    containers = deployment(example_docs)["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "ghcr.io/stianfro/threek8s/threek8s-frontend:1.0.0"
    assert containers[0]["env"] == [{"name": "LOG_LEVEL", "value": "info"}]


def test_render_options_and_values(helm_bin: str) -> None:
    docs = render_chart(
        helm_bin,
        EXAMPLE_CHART,
        release_name="demo",
        namespace="apps",
        kube_version="1.30.0",
        values={"image": {"registry": "registry.example/team"}, "backend": {"env": {"FEATURE_X": True}}},
    )
    backend = by_kind_name(docs)["Deployment/demo-backend"]
    container = backend["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/team/threek8s-backend:1.0.0"
    assert {"name": "FEATURE_X", "value": "true"} in container["env"]
    assert validate_manifests(docs, kubernetes_version="1.30.0") == []


def test_required_env_enforced_by_the_template(helm_bin: str) -> None:
    with pytest.raises(RenderFailed) as caught:
        render_chart(helm_bin, EXAMPLE_CHART, values={"frontend": {"requiredEnv": ["DATABASE_URL"]}})
    assert "frontend.env.DATABASE_URL is required" in str(caught.value)
    docs = render_chart(
        helm_bin, EXAMPLE_CHART, values={"frontend": {"requiredEnv": ["DATABASE_URL"], "envFromSecret": "db"}}
    )
    spec = by_kind_name(docs)["Deployment/threek8s-frontend"]["spec"]["template"]["spec"]
    assert spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "db"}}]
    assert validate_manifests(docs) == []


def test_template_error_raises_render_failed_with_helms_message(helm_bin: str, example_chart: Path) -> None:
    (example_chart / "templates" / "broken.yaml").write_text("value: {{ .Values.nope.deeper }}\n")
    with pytest.raises(RenderFailed) as caught:
        render_chart(helm_bin, example_chart)
    error = caught.value
    assert error.returncode not in (None, 0)
    assert "broken.yaml" in error.stderr
    assert "nil pointer evaluating" in error.stderr
    assert error.stderr in str(error)


def test_template_syntax_error_and_fail(helm_bin: str, example_chart: Path) -> None:
    (example_chart / "templates" / "broken.yaml").write_text('{{ fail "chart says no: marker-42" }}\n')
    with pytest.raises(RenderFailed, match="chart says no: marker-42"):
        render_chart(helm_bin, example_chart)
    (example_chart / "templates" / "broken.yaml").write_text("{{ .Values.image.registry \n")
    with pytest.raises(RenderFailed, match="broken.yaml"):
        render_chart(helm_bin, example_chart)


def test_schema_violation_in_given_values_is_render_failed(helm_bin: str) -> None:
    with pytest.raises(RenderFailed, match="replicaCount"):
        render_chart(helm_bin, EXAMPLE_CHART, values={"frontend": {"replicaCount": "three"}})


def test_rendered_invalid_yaml_is_render_failed(helm_bin: str, example_chart: Path) -> None:
    (example_chart / "templates" / "bad.yaml").write_text("a: b\n c: [d\n")
    with pytest.raises(RenderFailed):
        render_chart(helm_bin, example_chart)


def test_unknown_field_in_rendered_deployment_is_named(helm_bin: str, example_chart: Path) -> None:
    template = example_chart / "templates" / "frontend-deployment.yaml"
    text = template.read_text()
    text = text.replace("          imagePullPolicy:", "          imagePullPolcy: Always\n          imagePullPolicy:")
    text = text.replace("spec:\n  replicas:", "spec:\n  replicaz: 2\n  replicas:")
    template.write_text(text)
    problems = validate_manifests(render_chart(helm_bin, example_chart))
    assert problems == [
        "Deployment/threek8s-frontend: spec.replicaz: unknown field (not in the Kubernetes schema); "
        "remove it or fix its spelling",
        "Deployment/threek8s-frontend: spec.template.spec.containers[0].imagePullPolcy: unknown field "
        "(not in the Kubernetes schema); remove it or fix its spelling",
    ]


def test_wrong_types_and_missing_required_fields(example_docs: list[dict[str, Any]]) -> None:
    doc = deployment(example_docs)
    doc["spec"]["replicas"] = "2"
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPort"] = "http"
    del container["name"]
    problems = validate_manifests([doc])
    assert len(problems) == 3, problems
    joined = "\n".join(problems)
    assert all(p.startswith("Deployment/threek8s-frontend: ") for p in problems)
    assert "spec.replicas: '2' is not of type 'integer'" in joined
    assert "spec.template.spec.containers[0].ports[0].containerPort: 'http' is not of type 'integer'" in joined
    assert "spec.template.spec.containers[0]: 'name' is a required property" in joined


def test_every_document_is_checked(example_docs: list[dict[str, Any]]) -> None:
    service = copy.deepcopy(by_kind_name(example_docs)["Service/threek8s-backend"])
    service["spec"]["ports"][0]["port"] = "eighty"
    frontend = deployment(example_docs)
    frontend["spec"]["paused"] = "no"
    problems = validate_manifests([*example_docs, service, frontend])
    assert [p.split(":")[0] for p in problems] == ["Service/threek8s-backend", "Deployment/threek8s-frontend"]


def test_unknown_kind_and_malformed_documents(example_docs: list[dict[str, Any]]) -> None:
    problems = validate_manifests(
        [
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
            {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "old"}},
            {"kind": "ConfigMap", "metadata": {"name": "c"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
        ]
    )
    assert len(problems) == 4, problems
    assert problems[0].startswith("Widget/w: no schema for kind Widget in example.com/v1")
    assert problems[1].startswith("Ingress/old: no schema for kind Ingress in extensions/v1beta1")
    assert problems[2].startswith("ConfigMap/c: apiVersion and kind are required")
    assert problems[3].startswith("ConfigMap/(unnamed): metadata.name is required")


def test_kubernetes_versions() -> None:
    versions = bundled_kubernetes_versions()
    assert "1.31" in versions
    assert schema_version_for(DEFAULT_KUBERNETES_VERSION) == "1.31"
    assert schema_version_for("v1.29.4") == "1.29"
    with pytest.raises(ValueError, match="newer"):
        schema_version_for("9.99.0")
    with pytest.raises(ValueError, match="older"):
        schema_version_for("1.2.0")


def test_missing_helm_binary_is_render_failed(tmp_path: Path) -> None:
    with pytest.raises(RenderFailed, match="install helm"):
        render_chart(tmp_path / "no-helm", EXAMPLE_CHART)
