"""Building an image's platforms with BuildKit: the plan (lowering, stage bases, base digests), one
build per platform (at once or in turn, on an engine that can run it), the build record and log,
and the reproducible exports the scan and the push read."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat

from releases.adapters.registry_client import registry_client, split_location
from releases.database.locks import engine_lock
from releases.imagebuild.layer_cache import LayerCache
from releases.imagebuild.lowering import lower_dockerfile
from releases.imagebuild.reproducible import normalise_export
from releases.imagebuild.source import commit_time
from releases.imagebuild.stages import stage_bases
from releases.observability.redaction import redact_url

from ..choices import MOVING_TAG
from ..imagebuild import (
    BuildFailed,
    BuildkitUnavailable,
    BuildPathError,
    DockerfileError,
    EngineUnavailable,
    ExportedImage,
    ImageBuildError,
    build_paths,
    buildkit,
    connect_engine,
    export_image,
)
from ..imagebuild.buildkit import BuiltImage, engine_network
from ..imagebuild.emulation import emulation_fix, engine_platforms
from ..imagebuild.errors import ENGINE_UNAVAILABLE_ERRORS
from ..imagebuild.export import load_export
from ..models import DockerImage, ReleaseVersion
from ..oci import RegistryClient, RegistryError
from ..transitions import mark_progress, public_text
from . import progress
from .errors import PipelineError
from .source import checkout_source, release_of

logger = logging.getLogger(__name__)
report_progress = partial(progress.report_progress, DockerImage)


class BuildLog:
    """Appends engine output to ``DockerImage.build_log`` in small batches, so the admin shows it live."""

    def __init__(self, image_pk: int, flush_every: float = 0.5) -> None:
        self.image_pk = image_pk
        self.flush_every = flush_every
        self.pending: list[str] = []
        self.last_flush = time.monotonic()
        # The platforms of an image may build (and log) at once, from pool threads; only the thread
        # that made the log writes it, with its own database connection.
        self.lock = threading.Lock()
        self.owner = threading.get_ident()

    def __call__(self, line: str) -> None:
        with self.lock:
            self.pending.append(public_text(line.rstrip("\n")))
            due = time.monotonic() - self.last_flush >= self.flush_every or len(self.pending) >= 200
        if due and threading.get_ident() == self.owner:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, []
            self.last_flush = time.monotonic()
            if pending:
                text = "\n".join(pending) + "\n"
                mark_progress(DockerImage, self.image_pk, build_log=Concat(F("build_log"), Value(text)))


def workdir_for(image: DockerImage) -> Path:
    return Path(settings.BUILD_WORKDIR) / f"image-{image.pk}"


def platform_dir(image: DockerImage, platform: str) -> Path:
    return workdir_for(image) / "export" / platform.replace("/", "-")


@dataclass(frozen=True)
class PlatformExport:
    platform: str
    image: ExportedImage
    base_image_digest: str | None = None


def describe(exported: ExportedImage, *, base_image_digest: str | None = None) -> dict:
    """What the index needs of a platform image, recorded so a resumed push needs no export; and
    the digest of the base image it was built on, when the engine knows it (for the provenance)."""
    described = {
        "digest": exported.manifest_digest,
        "manifest_size": len(exported.manifest_bytes),
        "os": exported.os,
        "architecture": exported.architecture,
        "variant": exported.variant,
        "size": exported.size,
    }
    if base_image_digest:
        described["base_image_digest"] = base_image_digest
    return described


def base_image_digest(base_image: str) -> str | None:
    """The digest ``base_image`` resolves to in its registry now (its pinned digest when it has one).

    Asked right before the build pulls it, for the provenance; ``None`` when the registry cannot
    say (unreachable, private, ``scratch``). Our own registry is asked with our credentials, any
    other anonymously: credentials never go to a host they were not configured for.
    """
    name, at, pinned = base_image.partition("@")
    if at:
        return pinned if pinned.startswith("sha256:") else None
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "registry-1.docker.io", name if slash else f"library/{name}"
    last = path.rsplit("/", 1)[-1]
    repository, tag = path.rsplit(":", 1) if ":" in last else (path, "latest")
    if name == "scratch" or not repository:
        return None
    own_host = split_location(settings.REGISTRY_NAMESPACE)[0]
    client = (
        registry_client(host)
        if host == own_host
        else RegistryClient(host, insecure_hosts=settings.REGISTRY_INSECURE_HOSTS, retries=0, timeout=10.0)
    )
    try:
        with client:
            found = client.head_manifest(repository, tag)
    except (RegistryError, ValueError, httpx.HTTPError) as error:
        logger.info("base image %s: digest unknown (%s)", base_image, public_text(str(error)))
        return None
    return found.digest if found is not None else None


def oci_labels(image: DockerImage, release: ReleaseVersion, created: datetime) -> dict[str, str]:
    """The OCI labels every platform image carries; public, so the source URL has no credentials."""
    return {
        "org.opencontainers.image.version": image.tag,
        "org.opencontainers.image.revision": release.commit_sha,
        "org.opencontainers.image.source": redact_url(settings.SOURCE_REPOSITORY_URL),
        "org.opencontainers.image.created": created.isoformat().replace("+00:00", "Z"),
        "org.opencontainers.image.title": image.name,
    }


def build(image: DockerImage) -> list[PlatformExport]:
    """Check out the release's commit and build and export every platform with BuildKit.

    Before anything is built: the Dockerfile is lowered (or refused, naming every line we cannot
    honour), every stage's base is resolved to a digest, and the engine must be able to run every
    requested platform. The build record (stage bases, per-platform steps) is written as it goes.
    """
    release = release_of(image.tag)
    workdir = workdir_for(image)
    shutil.rmtree(workdir, ignore_errors=True)
    log = BuildLog(image.pk)
    report_progress(image.pk, f"checking out {release.commit_sha[:12]}")
    source = checkout_source(release, workdir / "source")
    try:
        context, dockerfile = build_paths(source, image.context_path, image.dockerfile_path)
    except BuildPathError as refused:
        raise PipelineError(
            f"{image.context_path}{image.dockerfile_path} at commit {release.commit_sha[:12]}: {refused}"
        ) from refused
    # The image's own build args (from .release-registry.yaml) are more specific than the service's.
    build_args = {**settings.IMAGE_BUILD_ARGS, **image.build_args}
    plan = plan_build(context, dockerfile, build_args, log)
    epoch = source_epoch(source, release)
    labels = oci_labels(image, release, datetime.fromtimestamp(epoch, UTC))
    DockerImage.objects.filter(pk=image.pk).update(
        base_image=plan.base_image, stage_bases=plan.stage_bases, labels=labels, build_log="", build_steps={}
    )
    for note in plan.notes:
        log(f"==> {note}")
    client = connect_engine(settings.DOCKER_HOST, timeout=120)
    platforms = list(settings.IMAGE_PLATFORMS)
    network = require_engine(client, platforms, log)
    cache_from = previous_release_image(image)
    if cache_from:
        log(f"==> cache from {', '.join(cache_from)} (inline cache of the previous release)")
    build_one = partial(
        build_platform_with_buildkit,
        image,
        context,
        plan.dockerfile,
        labels=labels,
        build_args=build_args,
        network=network,
        cache_from=cache_from,
        log=log,
    )
    at_once = settings.BUILD_PLATFORMS_AT_ONCE and len(platforms) > 1
    # Said before waiting for the engine, so a build stuck there is reported as building.
    report_progress(
        image.pk,
        f"building {', '.join(platforms)} at once" if at_once else f"building {platforms[0]} (1/{len(platforms)})",
    )
    try:
        with engine_lock(shared=True):
            built = build_platforms(image, platforms, build_one, network, log)
    except (EngineUnavailable, BuildkitUnavailable):
        log.flush()
        raise
    except BuildFailed as error:
        log.flush()
        raise PipelineError(str(error)) from error
    report_progress(image.pk, f"exporting {', '.join(platforms)}")

    def export(platform: str) -> PlatformExport:
        exported = reproducible_export(client, built[platform].image_id, platform_dir(image, platform), epoch)
        log(f"==> {platform}: manifest {exported.manifest_digest}, {exported.size} bytes")
        return PlatformExport(platform, exported, plan.final_base_digest)

    # Every platform's export at once, once every build has ended (the engine saves one image while
    # this process compresses another's layers).
    with ThreadPoolExecutor(max_workers=len(platforms), thread_name_prefix="export") as pool:
        exports = list(pool.map(export, platforms))
    log.flush()
    return exports


def source_epoch(source: Path, release: ReleaseVersion) -> int:
    """The commit's time: the image's ``created`` and the clamp of every later timestamp in it."""
    try:
        return commit_time(source, release.commit_sha)
    except ImageBuildError as error:
        raise PipelineError(str(error)) from error


def reproducible_export(client, image_id: str, directory: Path, epoch: int) -> ExportedImage:
    """Export a built image with every timestamp after the commit clamped to it (reproducible builds:
    the same commit rebuilt on any engine gives the same digest for a deterministic Dockerfile).
    Layers an earlier export compressed come from the layer cache (``LAYER_CACHE_DIR``)."""
    return normalise_export(export_image(client, image_id, directory, cache=layer_cache()), epoch)


def layer_cache() -> LayerCache | None:
    """The worker's cache of compressed layers, or ``None`` when ``LAYER_CACHE_MAX_BYTES`` is 0."""
    if settings.LAYER_CACHE_MAX_BYTES <= 0:
        return None
    return LayerCache(
        settings.LAYER_CACHE_DIR or Path(settings.BUILD_WORKDIR) / "layer-cache", settings.LAYER_CACHE_MAX_BYTES
    )


def build_platforms(image: DockerImage, platforms: list[str], build_one, network: str, log: BuildLog) -> dict:
    """Build every platform (at once or one after the other), record each one's steps, and raise
    the first failure once every platform has ended. Pool threads touch no database: this thread
    writes the log and the record."""
    outcomes: dict[str, BuiltImage | BaseException] = {}
    if settings.BUILD_PLATFORMS_AT_ONCE and len(platforms) > 1:
        with ThreadPoolExecutor(max_workers=len(platforms), thread_name_prefix="build") as pool:
            futures = {platform: pool.submit(build_one, platform) for platform in platforms}
            pending = set(futures.values())
            while pending:
                _, pending = wait(pending, timeout=0.5)
                log.flush()
        for platform, future in futures.items():
            error = future.exception()
            outcomes[platform] = error if error is not None else future.result()
    else:
        for number, platform in enumerate(platforms, 1):
            report_progress(image.pk, f"building {platform} ({number}/{len(platforms)})")
            try:
                outcomes[platform] = build_one(platform)
            except BuildFailed as error:
                outcomes[platform] = error
                break
    for platform, outcome in outcomes.items():
        if isinstance(outcome, BuiltImage):
            cached, steps_count = len(outcome.cached_steps), len(outcome.steps)
            log(f"==> {platform}: built in {outcome.seconds:.1f}s, {cached} of {steps_count} steps from the cache")
            steps = [step.record() for step in outcome.steps]
            record_build_steps(image.pk, platform, {"network": network, "seconds": outcome.seconds, "steps": steps})
        elif isinstance(outcome, BuildFailed):
            record_build_steps(image.pk, platform, {"network": network, "failed": public_text(str(outcome))})
    failures = [outcome for outcome in outcomes.values() if isinstance(outcome, BaseException)]
    if failures:
        raise next((f for f in failures if not isinstance(f, BuildFailed)), failures[0])
    return outcomes


@dataclass(frozen=True)
class BuildPlan:
    """What is known before building: the Dockerfile to build, its stages' bases and digests."""

    dockerfile: str  # relative to the context
    base_image: str  # the final stage's base, pinned by digest when known
    final_base_digest: str | None
    stage_bases: list[dict]
    notes: list[str]


def plan_build(context: Path, dockerfile: Path, build_args: dict[str, str], log: BuildLog | None = None) -> BuildPlan:
    """Lower the Dockerfile (refusing what we cannot honour) and resolve every stage's base."""
    text = dockerfile.read_text()
    relative = str(dockerfile.relative_to(context)) if dockerfile.is_relative_to(context) else str(dockerfile)
    try:
        lowered = lower_dockerfile(text, dockerfile_path=relative)
        stages = stage_bases(text, build_args)
    except DockerfileError as error:
        raise PipelineError(f"{relative} cannot be built: {error}") from error
    if not stages:
        raise PipelineError(f"{relative} has no FROM instruction")
    try:
        lowered.write_files(context)
    except (DockerfileError, OSError) as error:
        raise PipelineError(f"{relative} cannot be built: {error}") from error
    build_file = lowered.build_file
    digests: dict[str, str | None] = {}
    recorded = []
    for stage in stages:
        if stage.from_stage is None and stage.base not in digests:
            digests[stage.base] = None if stage.base == "scratch" else base_image_digest(stage.base)
        entry = {
            "stage": stage.name or str(stage.index),
            "base": stage.base,
            "digest": digests.get(stage.base),
            "platform": stage.platform,
            "final": stage.is_final,
        }
        if stage.from_stage:
            entry["from_stage"] = stage.from_stage
        recorded.append(entry)
    final = recorded[-1]
    final_digest = final["digest"] or digests.get(final["base"])
    base_image = final["base"]
    if final_digest and "@" not in base_image:
        base_image = f"{base_image}@{final_digest}"
    return BuildPlan(build_file, base_image, final_digest, recorded, list(lowered.notes))


def require_engine(client, platforms: list[str], log: BuildLog) -> str:
    """Refuse before building when the engine cannot run a platform; the build network and why."""
    try:
        info = client.info()
        networks = [network.name for network in client.networks.list()]
    except ENGINE_UNAVAILABLE_ERRORS as error:
        raise EngineUnavailable(f"the docker engine at {settings.DOCKER_HOST} stopped answering: {error}") from error
    runnable = engine_platforms(settings.DOCKER_HOST, str(info.get("Architecture", "")))
    missing = runnable.missing(platforms)
    if missing:
        raise PipelineError(emulation_fix(missing) + f" (it runs {', '.join(runnable.runnable)})")
    network, why = engine_network(networks, settings.BUILD_NETWORK)
    log(f"==> build network: {network} ({why})")
    return network


def previous_release_image(image: DockerImage) -> list[str]:
    """The previous published version of this image, whose inline cache can serve this build."""
    previous = (
        DockerImage.objects.available()
        .filter(name=image.name, registry=image.registry)
        .exclude(pk=image.pk)
        .exclude(tag=MOVING_TAG)
        .order_by("-tag_order")
        .first()
    )
    return [previous.reference] if previous is not None else []


def build_platform_with_buildkit(
    image: DockerImage,
    context: Path,
    dockerfile: str,
    platform: str,
    *,
    labels: dict[str, str],
    build_args: dict[str, str],
    network: str,
    cache_from: list[str],
    log: BuildLog,
) -> BuiltImage:
    """One platform's BuildKit build (in a pool thread when the platforms build at once)."""
    log(f"==> building {platform}")
    prefix = f"[{platform}] "
    own_host = split_location(settings.REGISTRY_NAMESPACE)[0]
    credentials = (
        {own_host: (settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD)}
        if settings.REGISTRY_USERNAME and settings.REGISTRY_PASSWORD
        else None
    )
    return buildkit.build_image(
        context,
        dockerfile,
        platform,
        cli=settings.BUILDKIT_DOCKER_CLI,
        docker_host=settings.DOCKER_HOST,
        on_log=lambda line: log(prefix + line),
        labels=labels,
        build_args=build_args,
        network=network,
        secrets=settings.BUILD_SECRETS.values(),
        cache_from=cache_from,
        registry_auth=credentials,
        timeout=settings.BUILD_TIMEOUT_SECONDS,
    )


def record_build_steps(image_pk: int, platform: str, record: dict) -> None:
    """Add one platform's steps to ``build_steps``."""
    record = json.loads(public_text(json.dumps(record)))
    with transaction.atomic():
        row = DockerImage.objects.select_for_update().only("build_steps").get(pk=image_pk)
        steps = {**(row.build_steps or {}), platform: record}
        DockerImage.objects.filter(pk=image_pk).update(build_steps=steps)


def load_exports(image: DockerImage) -> list[PlatformExport]:
    exports = []
    for platform in image.platform_digests:
        exports.append(PlatformExport(platform, require_export(image, platform)))
    return exports


def require_export(image: DockerImage, platform: str) -> ExportedImage:
    digest = image.platform_digests[platform]["digest"]
    exported = load_export(platform_dir(image, platform), digest)
    if exported is None:
        raise PipelineError(
            f"the {platform} export recorded as {digest} is gone from {platform_dir(image, platform)}; "
            "retry the image to build it again"
        )
    return exported
