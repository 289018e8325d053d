"""``manage.py admission_config``: what it prints is checked offline against the Kubernetes schemas
(kubernetes-validate, as rendered charts are), and holds the promises a cluster admin needs."""

from __future__ import annotations

import base64
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from releases.charts.render import bundled_kubernetes_versions, validate_manifests

CA = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"


def printed(*args: str) -> list[dict]:
    out = StringIO()
    call_command("admission_config", *args, stdout=out)
    return list(yaml.safe_load_all(out.getvalue()))


@pytest.mark.parametrize("version", ["1.31", None])
def test_the_printed_configurations_match_the_kubernetes_schemas(tmp_path, version):
    version = version or bundled_kubernetes_versions()[-1]
    (tmp_path / "ca.pem").write_bytes(CA)
    for args in (
        ("--service", "registry/release-registry", "--ca-bundle", str(tmp_path / "ca.pem"), "--mutating"),
        ("--url", "https://registry.example.com", "--cert-manager", "registry/webhook-cert", "--mutating"),
        ("--url", "https://registry.example.com/", "--namespace", "registry"),
    ):
        documents = printed(*args)
        assert validate_manifests(documents, version) == [], args


def test_fail_closed_short_timeout_no_side_effects_v1_opt_in_never_kube_system_nor_its_own_namespace(tmp_path):
    (tmp_path / "ca.pem").write_bytes(CA)
    validating, mutating = printed(
        "--service", "registry/release-registry", "--ca-bundle", str(tmp_path / "ca.pem"), "--mutating"
    )
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    for document, path in ((validating, "/admission/validate/"), (mutating, "/admission/mutate/")):
        (webhook,) = document["webhooks"]
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["timeoutSeconds"] <= 10
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1"]
        selector = webhook["namespaceSelector"]["matchExpressions"]
        assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "registry"]} in (
            selector
        )
        assert any(expression["operator"] == "In" for expression in selector)  # opt-in by label
        assert webhook["clientConfig"] == {
            "service": {"namespace": "registry", "name": "release-registry", "path": path, "port": 443},
            "caBundle": base64.b64encode(CA).decode(),
        }
        kinds = {resource for rule in webhook["rules"] for resource in rule["resources"]}
        assert {"pods", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"} <= kinds


def test_cert_manager_injects_the_ca_and_a_url_is_https():
    (validating,) = printed("--url", "https://registry.example.com", "--cert-manager", "registry/webhook-cert")
    assert validating["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": "registry/webhook-cert"}
    assert validating["webhooks"][0]["clientConfig"] == {"url": "https://registry.example.com/admission/validate/"}


def test_bad_options_are_refused_all_at_once(tmp_path):
    (tmp_path / "not-a-cert.pem").write_text("hello")
    with pytest.raises(CommandError) as refused:
        printed(
            "--url", "http://registry.example.com", "--timeout", "30", "--ca-bundle", str(tmp_path / "not-a-cert.pem")
        )
    message = str(refused.value)
    assert "HTTPS only" in message and "between 1 and 10" in message and "not a PEM certificate" in message
    with pytest.raises(CommandError, match="a service needs the CA"):
        printed("--service", "registry/release-registry")
    with pytest.raises(CommandError, match="either --url"):
        printed()
