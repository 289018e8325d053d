"""Load the sample threek8s data so a newcomer sees a populated admin."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from releases import services
from releases.choices import ChartState, EnvironmentScope, ReleaseState
from releases.models import ChartDependency, DockerImage, EnvironmentVariable, ReleaseVersion

SAMPLE_VERSION = "1.0.0"
SAMPLE_COMMIT = "0" * 40
SAMPLE_CHANGELOG = """## 1.0.0 (2026-11-26)

### Features

* **frontend:** cluster overview page ([#12](https://github.com/stianfro/threek8s/issues/12)) ([1a2b3c4](https://github.com/stianfro/threek8s/commit/1a2b3c4))
* **backend:** watch nodes and pods over the Kubernetes API ([#10](https://github.com/stianfro/threek8s/issues/10)) ([5d6e7f8](https://github.com/stianfro/threek8s/commit/5d6e7f8))

### Bug Fixes

* reconnect the websocket after a timeout ([#14](https://github.com/stianfro/threek8s/issues/14)) ([9a0b1c2](https://github.com/stianfro/threek8s/commit/9a0b1c2))
"""

ENVIRONMENT = [
    (
        "API_URL",
        "http://threek8s-backend:8080",
        "Where the frontend reaches the backend API.",
        False,
        EnvironmentScope.FRONTEND,
        False,
    ),
    ("NODE_ENV", "production", "Node.js mode for both services.", False, EnvironmentScope.BOTH, False),
    ("LOG_LEVEL", "info", "Backend log level: debug, info, warn or error.", False, EnvironmentScope.BACKEND, False),
    (
        "CLUSTER_TOKEN",
        "",
        "Service-account token the backend watches the cluster with (from a Secret).",
        True,
        EnvironmentScope.BACKEND,
        True,
    ),
]


class Command(BaseCommand):
    help = "Load the sample threek8s release 1.0.0 (planned, not yet published) and its environment variables."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--commit-sha", default=SAMPLE_COMMIT, help="Full commit SHA the sample release builds.")

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        variables = []
        for name, default, description, required, scope, secret in ENVIRONMENT:
            variable, _ = EnvironmentVariable.objects.update_or_create(
                name=name,
                defaults={
                    "default_value": default,
                    "description": description,
                    "required": required,
                    "scope": scope,
                    "secret": secret,
                },
            )
            variable.full_clean()
            variables.append(variable)
        release = ReleaseVersion.objects.filter(version=SAMPLE_VERSION).first()
        if release is not None and release.state == ReleaseState.PUBLISHED:
            # Published rows (its images, the indexed chart and its dependencies) are immutable:
            # a second bin/run serves them as they are.
            self.stdout.write(
                self.style.SUCCESS(f"sample release {release.version} is already published: nothing to load")
            )
            return
        created = release is None
        if created:
            release = services.create_release(
                version=SAMPLE_VERSION,
                commit_sha=options["commit_sha"],
                pr_number=15,
                changelog=SAMPLE_CHANGELOG,
                release_notes="First release of threek8s.",
            )
        services.plan_release(release.pk)  # links the images and the chart to their variables
        chart = release.charts().get()
        if chart.state != ChartState.INDEXED and not chart.dependencies.exists():
            ChartDependency.objects.create(
                chart=chart,
                name="redis",
                version="^20.0.0",
                repository="oci://registry-1.docker.io/bitnamicharts",
                condition="redis.enabled",
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"sample release {release.version} {'loaded' if created else 'already present'}: "
                f"{DockerImage.objects.filter(tag=SAMPLE_VERSION).count()} images, 1 chart, "
                f"{len(variables)} environment variables"
            )
        )
