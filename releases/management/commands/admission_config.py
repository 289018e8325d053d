"""``manage.py admission_config``: print the ValidatingWebhookConfiguration (``--mutating``: and the
MutatingWebhookConfiguration) that makes a cluster call our admission webhooks, ready for
``kubectl apply -f -``. Checked against the Kubernetes schemas (offline, kubernetes-validate)
before it is printed. See ``releases.trust.webhook_config`` for what it guarantees.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from releases.charts.render import validate_manifests
from releases.trust.webhook_config import ADMISSION_LABEL, PIN_LABEL, WebhookConfigInvalid, WebhookTarget
from releases.trust.webhook_config import webhook_configurations as build


class Command(BaseCommand):
    help = "Print the Validating (and Mutating) WebhookConfiguration that points a cluster at our admission webhooks."

    def add_arguments(self, parser) -> None:
        where = parser.add_argument_group("where the API server reaches the service (one of)")
        where.add_argument("--url", default="", help="https://registry.example.com (the service's public HTTPS URL)")
        where.add_argument("--service", default="", help="<namespace>/<name> of the in-cluster Service")
        where.add_argument("--service-port", type=int, default=443)
        ca = parser.add_argument_group("the CA of the serving certificate (one of; optional with a public --url)")
        ca.add_argument("--ca-bundle", type=Path, help="PEM file of the CA that signed the serving certificate")
        ca.add_argument("--cert-manager", default="", help="<namespace>/<certificate>: cert-manager injects the CA")
        parser.add_argument(
            "--namespace", default="", help="the webhook's own namespace, never judged (default: the --service's)"
        )
        parser.add_argument("--name", default="release-registry", help="metadata.name of the configurations")
        parser.add_argument("--timeout", type=int, default=5, help="timeoutSeconds, 1-10 (default 5)")
        parser.add_argument("--mutating", action="store_true", help="also the pinning MutatingWebhookConfiguration")

    def handle(self, *args, **options) -> None:
        problems = []
        ca_bundle = b""
        if options["ca_bundle"]:
            try:
                ca_bundle = options["ca_bundle"].read_bytes()
            except OSError as error:
                problems.append(f"--ca-bundle {options['ca_bundle']}: {error.strerror}")
        target = WebhookTarget(
            url=options["url"],
            service=options["service"],
            port=options["service_port"],
            ca_bundle=ca_bundle,
            cert_manager=options["cert_manager"],
            own_namespace=options["namespace"],
            name=options["name"],
            timeout=options["timeout"],
        )
        try:
            documents = build(target, mutating=options["mutating"])
        except WebhookConfigInvalid as error:
            problems += error.problems
        if problems:
            raise CommandError("; ".join(problems))
        schema_problems = validate_manifests(documents, settings.KUBERNETES_VERSION)
        if schema_problems:  # a bug of ours, never printed for a cluster to apply
            raise CommandError("the configuration does not match the Kubernetes schemas: " + "; ".join(schema_problems))
        self.stdout.write(
            f"# Release registry admission webhooks. Judged: namespaces labelled {ADMISSION_LABEL}=enabled"
            + (f" (pinned: {PIN_LABEL}=enabled)" if options["mutating"] else "")
            + ",\n# never kube-system or the webhook's own namespace. The API server must send ADMISSION_TOKEN:"
            "\n# give it a kubeconfig with that bearer token for this webhook (AdmissionConfiguration)."
        )
        self.stdout.write(yaml.safe_dump_all(documents, sort_keys=False), ending="")
