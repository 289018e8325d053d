from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, transition

from ..choices import DEFAULT_IMAGE_NAME_BY_COMPONENT, MOVING_TAG, ImageComponent, ImageState
from ..layout import ReleaseLayout, default_layout
from ..validators import (
    SHA256_DIGEST_PATTERN,
    validate_architectures,
    validate_image_tag,
    validate_registry,
    validate_repository_name,
)
from ..versions import MAX_VERSION_LENGTH, SORT_KEY_MAX_LENGTH, column_sort_key
from .base import RegistryArtifact, StalledQuerySetMixin

ACTIVE_IMAGE_STATES = (ImageState.QUEUED, ImageState.BUILDING, ImageState.SCANNING, ImageState.PUSHING)


def default_image_registry() -> str:
    return settings.REGISTRY_NAMESPACE


def default_release_layout() -> ReleaseLayout:
    """The layout of a release whose source has no ``.release-registry.yaml`` (or that was planned
    before layouts were read): ``CHART_PATH`` and the spec's image names."""
    return default_layout(settings.CHART_PATH, DEFAULT_IMAGE_NAME_BY_COMPONENT)


def default_architectures() -> list[str]:
    return ["amd64", "arm64"]


class ImmutableTagError(ValidationError):
    """Raised when a change would alter what a published (immutable) tag points at."""


class DockerImageQuerySet(StalledQuerySetMixin, models.QuerySet):
    active_states = ACTIVE_IMAGE_STATES

    def available(self) -> DockerImageQuerySet:
        return self.filter(state=ImageState.AVAILABLE)

    def immutable_tags(self) -> DockerImageQuerySet:
        """Published version tags: what must never change digest."""
        return self.available().exclude(tag=MOVING_TAG)


class DockerImage(RegistryArtifact):
    """A multi-arch container image (frontend or backend) at one tag.

    State machine (``state``)::

        queued -> building -> scanning -> pushing -> available
          |          |           |           |
          +----------+-----------+-----------+--> failed --retry--> queued

    ``available`` is final: from then on the tag is immutable (unless it is ``latest``): its
    digest, name, tag and registry never change (``save()`` says so in words), and a database
    trigger freezes every content column and its env-var links (``releases.database.triggers``).
    Refuses: a tag that is neither semver nor ``latest``; a registry outside
    ``REGISTRY_NAMESPACE``; architectures without amd64; a non-positive size; an invalid digest;
    ``available`` without digest, size and build date.
    """

    name = models.CharField(max_length=128, validators=[validate_repository_name])
    tag = models.CharField(max_length=MAX_VERSION_LENGTH, validators=[validate_image_tag])
    tag_order = models.CharField(
        max_length=SORT_KEY_MAX_LENGTH,
        default="",
        editable=False,
        db_index=True,
        help_text="Sorts by semver whatever the collation (releases.versions.column_sort_key).",
    )
    registry = models.CharField(max_length=255, default=default_image_registry, validators=[validate_registry])
    architecture = models.JSONField(default=default_architectures, validators=[validate_architectures])
    base_image = models.CharField(
        max_length=255, blank=True, help_text="The final stage's base image, pinned by digest when its registry says."
    )
    stage_bases = models.JSONField(
        default=list,
        blank=True,
        help_text="Every stage of the Dockerfile: its name, its base image as resolved, the digest it was "
        "built from, the FROM --platform as written, and whether it is the final stage.",
    )
    build_steps = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per platform: the build network, the seconds the build took and every step with its "
        "duration and whether it came from the cache.",
    )
    build_date = models.DateTimeField(null=True, blank=True)
    labels = models.JSONField(default=dict, blank=True, help_text="OCI annotations/labels.")
    platform_digests = models.JSONField(
        default=dict, blank=True, help_text="Manifest digest per platform, e.g. linux/arm64."
    )
    component = models.CharField(
        max_length=16,
        choices=ImageComponent.choices,
        blank=True,
        help_text="Which of the release's components this image is (its artifact type).",
    )
    provenance = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per platform, the signed SLSA provenance attached to its manifest (DSSE envelope).",
    )
    context_path = models.CharField(max_length=255, blank=True, help_text="Build context in the source repo.")
    dockerfile_path = models.CharField(max_length=255, blank=True, help_text="Relative to the context.")
    build_args = models.JSONField(
        default=dict, blank=True, help_text="Build arguments of this image (over IMAGE_BUILD_ARGS)."
    )
    environment_variables = models.ManyToManyField(
        "releases.EnvironmentVariable", blank=True, related_name="docker_images"
    )
    state = FSMField(default=ImageState.QUEUED, choices=ImageState.choices, protected=True)
    build_log = models.TextField(blank=True)
    scan_findings = models.JSONField(
        default=list, blank=True, help_text="Findings of the scan: severity, check, path, message."
    )
    failure_reason = models.TextField(blank=True)

    objects = DockerImageQuerySet.as_manager()
    active_states = ACTIVE_IMAGE_STATES

    class Meta:
        ordering = ["name", "-created"]
        # A release's images are found by its version (the tag) and the image names.
        # verify and admission find images by index digest (releases.trust.records; platform digests
        # by a GIN index that 0023 adds on PostgreSQL).
        indexes = [
            models.Index(fields=["tag", "name"], name="image_tag_name_idx"),
            models.Index(fields=["digest"], name="image_digest_idx"),
        ]
        constraints = [
            RegistryArtifact.version_once("tag", "image_tag_unique", "image tag"),
            models.CheckConstraint(
                condition=~Q(state=ImageState.AVAILABLE)
                | (Q(digest__regex=SHA256_DIGEST_PATTERN) & Q(size__gt=0) & Q(build_date__isnull=False)),
                name="image_available_has_push_results",
            ),
            *RegistryArtifact.registry_constraints("image", ImageState),
        ]

    def __str__(self) -> str:
        return f"{self.reference}"

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def tag_is_immutable(self) -> bool:
        return self.state == ImageState.AVAILABLE and self.tag != MOVING_TAG

    def default_context_path(self) -> str:
        return self.name.removeprefix("threek8s-") + "/"

    # Validation ---------------------------------------------------------------------------
    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.state == ImageState.AVAILABLE:
            if not self.digest:
                errors.setdefault("digest", []).append(
                    "an available image needs the digest its push produced; it is set by the pipeline"
                )
            if not self.size:
                errors.setdefault("size", []).append("an available image needs its size in bytes")
            if not self.build_date:
                errors.setdefault("build_date", []).append("an available image needs its build date")
        if errors:
            raise ValidationError(errors)
        self._refuse_immutable_change()

    def _refuse_immutable_change(self) -> None:
        if self.pk is None:
            return
        stored = type(self).objects.filter(pk=self.pk).values("state", "tag", "name", "registry", "digest").first()
        if not stored or stored["state"] != ImageState.AVAILABLE or stored["tag"] == MOVING_TAG:
            return
        changed = [f for f in ("tag", "name", "registry", "digest") if getattr(self, f) != stored[f]]
        if changed:
            raise ImmutableTagError(
                {
                    field: (
                        f"tag {stored['tag']} is already published with digest {stored['digest']}; "
                        "published versions are immutable, publish a new version instead"
                    )
                    for field in changed
                }
            )

    def save(self, *args, **kwargs) -> None:
        self._refuse_immutable_change()
        if not self.context_path and self.name:
            self.context_path = self.default_context_path()
        if not self.dockerfile_path:
            self.dockerfile_path = "Dockerfile"
        if not self.component:  # an image planned by hand under a spec name
            self.component = default_release_layout().component_of(self.name) or ""
        self.tag_order = column_sort_key(self.tag)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.tag_is_immutable:
            raise ImmutableTagError(f"{self.reference} is published; published versions are kept as the audit trail")
        return super().delete(*args, **kwargs)

    # State machine ------------------------------------------------------------------------
    @transition(field=state, source=ImageState.QUEUED, target=ImageState.BUILDING)
    def start_build(self) -> None:
        self.failure_reason = ""

    @transition(field=state, source=ImageState.BUILDING, target=ImageState.SCANNING)
    def start_scan(self) -> None:
        pass

    @transition(field=state, source=ImageState.SCANNING, target=ImageState.PUSHING)
    def start_push(self) -> None:
        pass

    @transition(
        field=state,
        source=ImageState.PUSHING,
        target=ImageState.AVAILABLE,
        conditions=[lambda image: not image.guard_mark_available()],
    )
    def mark_available(self) -> None:
        self.progress = "available"

    def guard_mark_available(self) -> list[str]:
        problems = []
        if not self.digest:
            problems.append("the index digest is not recorded yet; push the image index first")
        if not self.size:
            problems.append("the image size is not recorded yet")
        if not self.build_date:
            problems.append("the build date is not recorded yet")
        return problems

    @transition(
        field=state, source=ACTIVE_IMAGE_STATES, target=ImageState.FAILED, custom={"admin": True, "label": "Fail"}
    )
    def fail(self, reason: str = "") -> None:
        self.failure_reason = reason

    @transition(
        field=state,
        source=ImageState.FAILED,
        target=ImageState.QUEUED,
        custom={"admin": True, "label": "Retry", "help_text": "Queue the image again; pushed digests are reused."},
    )
    def retry(self) -> None:
        self.failure_reason = ""
        self.progress = ""
