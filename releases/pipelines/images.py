"""One ``DockerImage`` from ``queued`` to ``available``: build, scan, push; resumable at each state.

Every step is a transition fired through ``transitions.fire_transition``; a step whose state has
already passed is skipped, so a redelivered task (or one after a worker died) picks up where the
row says it is. Exports are written deterministically under ``BUILD_WORKDIR/image-<pk>`` and
their digests recorded before the push, so a resumed push sends the same bytes, and a push that
finished is never rebuilt.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from django.conf import settings
from django.db import transaction

from releases.adapters.registry_client import registry_client
from releases.adapters.signing_keys import signing_key
from releases.database.locks import IMAGE_LOCK, exclusive, latest_lock
from releases.observability import metrics
from releases.observability.logcontext import log_context
from releases.pipelines.image_builds import (
    BuildLog,
    build,
    describe,
    load_exports,
    platform_dir,
    require_export,
    workdir_for,
)

from ..choices import MOVING_TAG, ImageState
from ..imagebuild import (
    EngineUnavailable,
    Finding,
    ImageBuildError,
    run_external_scanner,
    scan_image,
    severity_at_least,
)
from ..imagebuild.export import OCI_CONFIG, Blob
from ..models import DockerImage, ReleaseVersion
from ..oci import PlatformManifest, RegistryError, RegistryUnavailable, TagConflict, build_index
from ..oci.digest import sha256_digest
from ..oci.manifest import ManifestRef
from ..oci.media_types import OCI_INDEX
from ..signing import SigningError
from ..transitions import TransitionRefused, fire_transition, record_artifact
from ..versions import is_prerelease, parse_version
from . import progress
from .errors import PipelineBusy, PipelineError, refusal_reason, reraise_time_limit
from .signing import UNSIGNED, SigningRecord, sboms_in_background, sign_pushed_image
from .source import release_of

TRANSIENT_ERRORS = (EngineUnavailable, RegistryUnavailable)

logger = logging.getLogger(__name__)


report_progress = partial(progress.report_progress, DockerImage)


def stage(image_pk: int) -> str:
    """Where this row's pipeline is (state and progress), for a failure reason."""
    return progress.stage_of(DockerImage, image_pk)


def run_image_pipeline(image_pk: int, *, task: str = "") -> str:
    """Drive one image as far as it can go; return its final state.

    Refuses nothing silently: a failure a person must fix moves the image to ``failed`` with the
    reason; transient engine/registry errors propagate for the Celery task to retry.
    """
    with log_context(image=image_pk), exclusive(IMAGE_LOCK, image_pk) as acquired:
        if not acquired:
            raise PipelineBusy(f"image {image_pk}: another worker is on it")
        try:
            return _advance(image_pk, task)
        except TRANSIENT_ERRORS:
            raise
        except (PipelineError, RegistryError, ImageBuildError, SigningError, OSError) as error:
            reraise_time_limit(error)
            reason = refusal_reason(error)
            fail_image(image_pk, reason, task=task)
            metrics.task_failed("build_image", "refused")
            return ImageState.FAILED


def fail_image(image_pk: int, reason: str, *, task: str = "") -> bool:
    """End an active image ``failed`` with ``reason``; False when it had already ended (or is gone)."""
    image = DockerImage.objects.filter(pk=image_pk).first()
    if image is None or not image.is_active:
        return False
    report_progress(image_pk, "failed")
    try:
        fire_transition(DockerImage, image_pk, "fail", task=task, reason=reason)
    except TransitionRefused:
        return False  # another worker (or a person) ended it first
    return True


def _advance(image_pk: int, task: str) -> str:
    image = DockerImage.objects.filter(pk=image_pk).first()
    if image is None:  # deleted since the task was queued: nothing to do
        return "gone"
    if image.state == ImageState.QUEUED:
        image = fire_transition(DockerImage, image_pk, "start_build", task=task)
    if image.state == ImageState.BUILDING:
        with metrics.timed("image", "build"):
            exports = build(image)
        image = fire_transition(
            DockerImage,
            image_pk,
            "start_scan",
            task=task,
            changes={
                "platform_digests": {
                    e.platform: describe(e.image, base_image_digest=e.base_image_digest) for e in exports
                }
            },
        )
    if image.state == ImageState.SCANNING:
        with metrics.timed("image", "scan"):
            scan(image)  # stores the findings; blocking ones fail the image
        image = fire_transition(DockerImage, image_pk, "start_push", task=task)
    if image.state == ImageState.PUSHING:
        with metrics.timed("image", "push"):
            pushed = push(image)
        metrics.BYTES_PUSHED.labels(kind="image").inc(pushed.bytes_uploaded)
        log = BuildLog(image_pk)
        log(f"==> pushed {image.reference}@{pushed.digest}: {pushed.bytes_uploaded} bytes uploaded")
        log.flush()
        with transaction.atomic():
            image = fire_transition(DockerImage, image_pk, "mark_available", task=task, changes=pushed.changes)
            record_artifact(release_of(image.tag), image)
        shutil.rmtree(workdir_for(image), ignore_errors=True)
    if image.state == ImageState.AVAILABLE:
        # Idempotent, so a task redelivered after a crash right after the push still moves latest.
        move_latest(image)
    return image.state


def scan(image: DockerImage) -> list[Finding]:
    """The built-in checks and the configured scanner on every platform's export, before the push.

    The scanner reads each platform's OCI image layout (nothing is in the registry yet); its
    findings are named after the platform. Blocking findings fail the image.
    """
    findings: list[Finding] = []
    scanner_command = settings.IMAGE_SCANNER_COMMAND.split() if settings.IMAGE_SCANNER_COMMAND else []
    for export in load_exports(image):
        report_progress(image.pk, f"scanning {export.platform}")
        platform_findings = scan_image(export.image, max_size_bytes=settings.IMAGE_SIZE_BUDGET_BYTES)
        if scanner_command:
            platform_findings += run_external_scanner(
                scanner_command, platform_dir(image, export.platform), name=export.platform
            )
        for finding in platform_findings:
            if finding not in findings:
                findings.append(finding)
    blocking = severity_at_least(findings, settings.IMAGE_SCAN_FAIL_SEVERITY)
    DockerImage.objects.filter(pk=image.pk).update(scan_findings=[f.__dict__ for f in findings])
    if blocking:
        listed = "; ".join(f"{f.severity} {f.check} {f.path}: {f.message}".replace("  ", " ") for f in blocking)
        raise PipelineError(f"the scan found {len(blocking)} blocking problem(s): {listed}")
    return findings


@dataclass(frozen=True)
class PushOutcome:
    digest: str
    size: int
    build_date: datetime
    architecture: list[str]
    bytes_uploaded: int
    signing: SigningRecord = UNSIGNED

    @property
    def changes(self) -> dict:
        """The fields ``mark_available`` records, what was signed included."""
        return {
            "digest": self.digest,
            "size": self.size,
            "build_date": self.build_date,
            "architecture": self.architecture,
            **self.signing.changes(with_provenance=True),
        }


def push(image: DockerImage) -> PushOutcome:
    """Push each platform by digest, then one index by digest, sign them (with ``SIGNING_KEY``; the
    platforms' SBOMs are made meanwhile), then put the version tag; never overwrite.

    A platform manifest already in the registry is not pushed again (a resumed push sends 0 bytes),
    nor is a signature or attestation already there; a version tag that points elsewhere fails
    the image before anything is written.
    """
    repository = image.repository_path
    siblings = [
        f"{repository.rsplit('/', 1)[0]}/{name}"
        for name in DockerImage.objects.exclude(name=image.name).values_list("name", flat=True).distinct()
    ]
    platforms = list(image.platform_digests)
    manifests = [
        PlatformManifest(
            digest=p["digest"],
            size=p["manifest_size"],
            os=p["os"],
            architecture=p["architecture"],
            variant=p["variant"],
        )
        for p in image.platform_digests.values()
    ]
    index = build_index(manifests)
    index_digest = sha256_digest(index)
    platform_refs = {
        platform: ManifestRef(m.digest, m.media_type, m.size) for platform, m in zip(platforms, manifests, strict=True)
    }
    layouts = {platform: platform_dir(image, platform) for platform in platforms}
    uploaded = 0
    with registry_client() as client:
        existing = client.head_manifest(repository, image.tag)
        if existing is not None and existing.digest != index_digest:
            raise TagConflict(repository, image.tag, existing.digest, index_digest, registry=client.host)
        with sboms_in_background(client, image, platform_refs, layouts) as sboms:
            for platform, described in image.platform_digests.items():
                if client.head_manifest(repository, described["digest"]) is not None:
                    continue
                exported = require_export(image, platform)
                report_progress(image.pk, f"pushing {platform}")
                for blob in [
                    *exported.layers,
                    Blob(exported.config_path, exported.config_digest, len(exported.config_bytes), OCI_CONFIG),
                ]:
                    uploaded += client.push_blob(repository, blob.digest, blob.size, blob.path, mount_from=siblings)
                client.put_manifest(
                    repository,
                    exported.manifest_digest,
                    exported.manifest_bytes,
                    json.loads(exported.manifest_bytes)["mediaType"],
                )
            report_progress(image.pk, "pushing the image index")
            client.put_manifest(repository, index_digest, index, OCI_INDEX)
            if signing_key() is not None:
                report_progress(image.pk, "signing the index and platform manifests")
            signed = sign_pushed_image(
                client, image, ManifestRef(index_digest, OCI_INDEX, len(index)), platform_refs, sboms
            )
        report_progress(image.pk, f"tagging {image.tag}")
        client.put_manifest_immutable(repository, image.tag, index, OCI_INDEX)
    return PushOutcome(
        digest=index_digest,
        size=sum(p["size"] for p in image.platform_digests.values()),
        build_date=datetime.now(UTC),  # when it was published; the image's own ``created`` is the commit time
        architecture=sorted({m.architecture for m in manifests}, key=lambda a: (a != "amd64", a)),
        bytes_uploaded=uploaded,
        signing=signed,
    )


def move_latest(image: DockerImage) -> bool:
    """Point ``latest`` at this image only when it is the highest published version of its name
    that is not withdrawn (``pipelines.latest``, under the same lock)."""
    with latest_lock(image.repository_path):
        published = DockerImage.objects.immutable_tags().filter(name=image.name)
        tags = published.exclude(tag__in=ReleaseVersion.objects.withdrawn().values("version"))
        versions = [parse_version(tag) for tag in tags.values_list("tag", flat=True)]
        mine = parse_version(image.tag)
        if is_prerelease(mine) or any(version > mine for version in versions):
            return False
        if ReleaseVersion.objects.withdrawn().filter(version=image.tag).exists():
            return False
        with registry_client() as client:
            body, media_type, _ = client.get_manifest(image.repository_path, image.digest)
            client.put_manifest(image.repository_path, MOVING_TAG, body, media_type)
    report_progress(image.pk, f"available; {MOVING_TAG} moved to {image.tag}")
    return True
