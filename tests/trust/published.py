"""Releases published in a real registry and recorded in the database, for the withdrawal tests:
each version a distinct image index per image (so ``latest`` is told apart by digest) and a chart."""

from __future__ import annotations

import hashlib

from django.utils import timezone

from releases.charts.oci import oci_tag
from releases.choices import ArtifactType, ChartState, ImageState, ReleaseState
from releases.models import DockerImage, HelmChart, ReleaseArtifact, ReleaseVersion
from releases.oci import RegistryClient
from tests.audit.helpers import PushedImage, push_chart, push_image, put_index
from tests.fixtures.factories import COMMIT

IMAGES = {"threek8s-frontend": ArtifactType.DOCKER_FRONTEND, "threek8s-backend": ArtifactType.DOCKER_BACKEND}


class Shelf:
    """Versions of both images and the chart under ``namespace``, pushed and recorded as published."""

    def __init__(self, client: RegistryClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.path = namespace.split("/", 1)[1]
        self.base: dict[str, PushedImage] = {}
        self.digests: dict[tuple[str, str], str] = {}  # (image name, version) -> index digest

    def repository(self, name: str) -> str:
        return f"{self.path}/{name}"

    def publish(self, version: str, *, move_latest: bool = True) -> ReleaseVersion:
        release = ReleaseVersion.objects.create(version=version, commit_sha=COMMIT)
        for name, kind in IMAGES.items():
            repository = self.repository(name)
            if name not in self.base:
                self.base[name] = push_image(self.client, repository, "base")
            digest = put_index(self.client, repository, version, list(self.base[name].entries), version=version)
            if move_latest:
                self.client.put_manifest(repository, "latest", *self.client.get_manifest(repository, digest)[:2])
            self.digests[(name, version)] = digest
            image = DockerImage.objects.create(
                name=name,
                tag=version,
                registry=self.namespace,
                state=ImageState.AVAILABLE,
                digest=digest,
                size=100,
                build_date=timezone.now(),
            )
            ReleaseArtifact.objects.create(
                release=release, type=kind, uri=image.pinned_uri, checksum=digest, size=100, docker_image=image
            )
        chart_digest = push_chart(self.client, f"{self.path}/chart/threek8s", oci_tag(version), version)
        package = f"threek8s-{version}.tgz".encode()
        chart = HelmChart.objects.create(
            chart_version=version,
            app_version=version,
            registry=f"{self.namespace}/chart",
            state=ChartState.INDEXED,
            digest=chart_digest,
            package=package,
            package_digest="sha256:" + hashlib.sha256(package).hexdigest(),
            indexed_at=timezone.now(),
        )
        ReleaseArtifact.objects.create(
            release=release,
            type=ArtifactType.HELM_CHART,
            uri=chart.pinned_uri,
            checksum=chart_digest,
            size=len(package),
            helm_chart=chart,
        )
        ReleaseVersion.objects.filter(pk=release.pk).update(state=ReleaseState.PUBLISHED, published_at=timezone.now())
        release.refresh_from_db()
        return release

    def live(self, name: str, tag: str) -> str | None:
        ref = self.client.head_manifest(self.repository(name), tag)
        return ref.digest if ref else None

    def registry_snapshot(self, versions: list[str]) -> dict[str, str | None]:
        """Every version tag's digest in the registry (images and charts), ``latest`` left out."""
        tags = {f"{name}:{v}": self.live(name, v) for name in IMAGES for v in versions}
        for version in versions:
            ref = self.client.head_manifest(f"{self.path}/chart/threek8s", oci_tag(version))
            tags[f"chart:{version}"] = ref.digest if ref else None
        return tags


def database_snapshot() -> dict[str, list[dict]]:
    """Every published row as stored, column by column."""
    return {
        model.__name__: [dict(row) for row in model.objects.order_by("pk").values()]
        for model in (ReleaseVersion, ReleaseArtifact, DockerImage, HelmChart)
    }
