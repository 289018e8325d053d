"""Rebuild a published release and say, per image and platform, whether it reproduces.

Each image of the release is built again from its commit on this worker's engine, without the
engine's cache (every step runs again), exported the way the pipeline exports (timestamps clamped
to the commit time) and compared with the platform digest that was published. Nothing is pushed
and no row changes: published rows are immutable. Where an export of the published image is still
on disk, a difference names the layer or config field; otherwise the digests are what is compared.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from releases.adapters.registry_client import registry_client
from releases.database.locks import engine_lock

from ..choices import ImageState
from ..imagebuild import BuildFailed, ImageBuildError, build_paths, buildkit, connect_engine, export_image
from ..imagebuild.export import load_export
from ..imagebuild.reproducible import Comparison, compare_exports, compare_with_manifest, normalise_export
from ..models import DockerImage, ReleaseVersion
from ..oci import RegistryError
from .errors import PipelineError
from .image_builds import oci_labels, plan_build, platform_dir, require_engine, source_epoch
from .source import checkout_source, release_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageReproduction:
    image: str  # name:tag
    comparisons: list[Comparison]

    @property
    def reproduces(self) -> bool:
        return all(comparison.reproduces for comparison in self.comparisons)


def reproduce_release(version: str, *, on_line: Callable[[str], None] = logger.info) -> list[ImageReproduction]:
    """Rebuild every available image of release ``version``; one :class:`ImageReproduction` per image.

    Refuses (:class:`PipelineError`) a version with no available image, and names a build that
    fails (the Dockerfile no longer builds: the release does not reproduce).
    """
    release = release_of(version)
    images = list(DockerImage.objects.filter(tag=version, state=ImageState.AVAILABLE).order_by("name"))
    if not images:
        raise PipelineError(f"release {version} has no available image to rebuild")
    Path(settings.BUILD_WORKDIR).mkdir(parents=True, exist_ok=True)
    results = []
    for image in images:
        workdir = Path(tempfile.mkdtemp(prefix=f"reproduce-{image.pk}-", dir=settings.BUILD_WORKDIR))
        try:
            results.append(_reproduce_image(image, release, workdir, on_line))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def _reproduce_image(
    image: DockerImage, release: ReleaseVersion, workdir: Path, on_line: Callable[[str], None]
) -> ImageReproduction:
    name = f"{image.name}:{image.tag}"
    source = checkout_source(release, workdir / "source")
    try:
        context, dockerfile = build_paths(source, image.context_path, image.dockerfile_path)
    except ImageBuildError as error:
        raise PipelineError(f"{name}: {error}") from error
    build_args = {**settings.IMAGE_BUILD_ARGS, **image.build_args}
    plan = plan_build(context, dockerfile, build_args)
    epoch = source_epoch(source, release)
    labels = oci_labels(image, release, datetime.fromtimestamp(epoch, UTC))
    client = connect_engine(settings.DOCKER_HOST, timeout=120)
    network = require_engine(client, sorted(image.platform_digests), on_line)
    comparisons = []
    for platform, record in sorted(image.platform_digests.items()):
        on_line(f"{name} {platform}: rebuilding without cache")
        try:
            with engine_lock():
                built = buildkit.build_image(
                    context,
                    plan.dockerfile,
                    platform,
                    cli=settings.BUILDKIT_DOCKER_CLI,
                    docker_host=settings.DOCKER_HOST,
                    on_log=lambda line: None,
                    labels=labels,
                    build_args=build_args,
                    network=network,
                    secrets=settings.BUILD_SECRETS.values(),
                    timeout=settings.BUILD_TIMEOUT_SECONDS,
                    no_cache=True,
                )
        except BuildFailed as error:
            raise PipelineError(f"{name} {platform}: the rebuild failed: {error}") from error
        rebuilt = normalise_export(export_image(client, built.image_id, workdir / platform.replace("/", "-")), epoch)
        published = load_export(platform_dir(image, platform), record["digest"])
        if published is not None:
            comparison = compare_exports(platform, published, rebuilt)
        else:
            comparison = compare_with_manifest(
                platform, record["digest"], published_manifest(image, record["digest"]), rebuilt
            )
        on_line(f"{name} {comparison}")
        comparisons.append(comparison)
    return ImageReproduction(name, comparisons)


def published_manifest(image: DockerImage, digest: str) -> bytes:
    """The published platform manifest, read from the registry by digest."""
    try:
        with registry_client() as client:
            body, _, _ = client.get_manifest(image.repository_path, digest)
    except RegistryError as error:
        raise PipelineError(
            f"{image.name}:{image.tag}: cannot read the published manifest {digest}: {error}"
        ) from error
    return body
