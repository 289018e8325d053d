"""The ValidatingWebhookConfiguration (and the MutatingWebhookConfiguration) a cluster applies to
call our admission webhooks, as plain data (``manage.py admission_config`` prints it as YAML).

What it guarantees: ``failurePolicy: Fail`` (an unanswered review refuses, never admits),
``timeoutSeconds`` at most 10, ``sideEffects: None`` (dry runs are safe to send), v1 reviews only,
and an opt-in namespace selector: a namespace is judged only when labelled
``release-registry.io/admission=enabled`` (pinned only with ``release-registry.io/pin=enabled``)
and never ``kube-system`` or the webhook's own namespace, whatever their labels (a webhook that
judges its own pods can lock itself out). The API server calls webhooks over HTTPS only: either an
``https://`` URL or an in-cluster service, with the CA that signed the serving certificate given
as a ``caBundle`` or injected by cert-manager (``cert-manager.io/inject-ca-from``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ADMISSION_LABEL = "release-registry.io/admission"
PIN_LABEL = "release-registry.io/pin"
ENABLED = "enabled"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
NEVER_JUDGED = ("kube-system",)
TIMEOUT_MAX = 10
RULES = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["pods", "pods/ephemeralcontainers", "replicationcontrollers"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["batch"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["jobs", "cronjobs"],
        "scope": "Namespaced",
    },
]


class WebhookConfigInvalid(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class WebhookTarget:
    """Where the API server reaches us: ``url`` (https) or ``service`` (``namespace/name``) and
    ``port``; the CA as ``ca_bundle`` (PEM bytes) or ``cert_manager`` (``namespace/certificate``)."""

    url: str = ""
    service: str = ""
    port: int = 443
    ca_bundle: bytes = b""
    cert_manager: str = ""
    own_namespace: str = ""
    name: str = "release-registry"
    timeout: int = 5

    def problems(self) -> list[str]:
        found = []
        if bool(self.url) == bool(self.service):
            found.append("give either --url https://... or --service <namespace>/<name>, not both and not neither")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme != "https" or not parts.hostname:
                found.append(
                    f"--url {self.url!r}: the API server calls webhooks over HTTPS only; use https://host[:port]"
                )
            if parts.query or parts.fragment or parts.username:
                found.append(f"--url {self.url!r}: no query, fragment or user info")
        if self.service and (self.service.count("/") != 1 or not all(self.service.split("/"))):
            found.append(f"--service {self.service!r}: write it as <namespace>/<name>")
        if not 1 <= self.port <= 65535:
            found.append(f"--service-port {self.port}: a port is 1-65535")
        if self.ca_bundle and self.cert_manager:
            found.append("give --ca-bundle or --cert-manager, not both")
        if self.service and not (self.ca_bundle or self.cert_manager):
            found.append(
                "a service needs the CA of its serving certificate: --ca-bundle <ca.pem> or "
                "--cert-manager <namespace>/<certificate>"
            )
        if self.ca_bundle and b"-----BEGIN CERTIFICATE-----" not in self.ca_bundle:
            found.append("--ca-bundle is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
        if self.cert_manager and (self.cert_manager.count("/") != 1 or not all(self.cert_manager.split("/"))):
            found.append(f"--cert-manager {self.cert_manager!r}: write it as <namespace>/<certificate>")
        if not 1 <= self.timeout <= TIMEOUT_MAX:
            found.append(f"--timeout {self.timeout}: between 1 and {TIMEOUT_MAX} seconds")
        return found

    @property
    def namespace(self) -> str:
        return self.own_namespace or (self.service.split("/")[0] if self.service else "")

    def client_config(self, path: str) -> dict[str, Any]:
        if self.url:
            config: dict[str, Any] = {"url": self.url.rstrip("/") + path}
        else:
            namespace, name = self.service.split("/")
            config = {"service": {"namespace": namespace, "name": name, "path": path, "port": self.port}}
        if self.ca_bundle:
            config["caBundle"] = base64.b64encode(self.ca_bundle).decode()
        return config


def _namespace_selector(target: WebhookTarget, label: str) -> dict[str, Any]:
    excluded = sorted({*NEVER_JUDGED, *([target.namespace] if target.namespace else [])})
    return {
        "matchExpressions": [
            {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": excluded},
            {"key": label, "operator": "In", "values": [ENABLED]},
        ]
    }


def _metadata(target: WebhookTarget) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": target.name, "labels": {"app.kubernetes.io/name": "release-registry"}}
    if target.cert_manager:
        metadata["annotations"] = {"cert-manager.io/inject-ca-from": target.cert_manager}
    return metadata


def webhook_configurations(target: WebhookTarget, *, mutating: bool = False) -> list[dict[str, Any]]:
    """The ValidatingWebhookConfiguration, and the MutatingWebhookConfiguration when ``mutating``;
    raises :class:`WebhookConfigInvalid` listing every problem of ``target``."""
    problems = target.problems()
    if problems:
        raise WebhookConfigInvalid(problems)
    common = {
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": target.timeout,
        "rules": RULES,
    }
    documents = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": _metadata(target),
            "webhooks": [
                {
                    "name": "validate.release-registry.io",
                    "clientConfig": target.client_config("/admission/validate/"),
                    "namespaceSelector": _namespace_selector(target, ADMISSION_LABEL),
                    **common,
                }
            ],
        }
    ]
    if mutating:
        documents.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": _metadata(target),
                "webhooks": [
                    {
                        "name": "pin.release-registry.io",
                        "clientConfig": target.client_config("/admission/mutate/"),
                        "namespaceSelector": _namespace_selector(target, PIN_LABEL),
                        "reinvocationPolicy": "IfNeeded",
                        **common,
                    }
                ],
            }
        )
    return documents
