"""Enumerations of the release domain: one ``TextChoices`` per state field, plus grouped tuples."""

from django.db import models

from . import versions


class ReleaseState(models.TextChoices):
    DRAFT = "draft"
    PENDING = "pending"
    BUILDING = "building"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"


class ImageState(models.TextChoices):
    QUEUED = "queued"
    BUILDING = "building"
    SCANNING = "scanning"
    PUSHING = "pushing"
    AVAILABLE = "available"
    FAILED = "failed"


class ChartState(models.TextChoices):
    VALIDATING = "validating"
    PACKAGING = "packaging"
    UPLOADING = "uploading"
    INDEXED = "indexed"
    INVALID = "invalid"


class ArtifactType(models.TextChoices):
    DOCKER_FRONTEND = "docker-frontend"
    DOCKER_BACKEND = "docker-backend"
    HELM_CHART = "helm-chart"


class ImageComponent(models.TextChoices):
    """The two components a release builds an image of (``.release-registry.yaml`` ``images:``)."""

    FRONTEND = "frontend"
    BACKEND = "backend"


class EnvironmentScope(models.TextChoices):
    FRONTEND = "frontend"
    BACKEND = "backend"
    BOTH = "both"


DOCKER_ARTIFACT_TYPES = (ArtifactType.DOCKER_FRONTEND, ArtifactType.DOCKER_BACKEND)

# The image each docker artifact type points at, by image name: the spec's names, the defaults of a
# release whose source has no .release-registry.yaml (a release's own names are in its layout).
IMAGE_NAME_BY_ARTIFACT_TYPE = {
    ArtifactType.DOCKER_FRONTEND: "threek8s-frontend",
    ArtifactType.DOCKER_BACKEND: "threek8s-backend",
}
ARTIFACT_TYPE_BY_COMPONENT = {
    ImageComponent.FRONTEND: ArtifactType.DOCKER_FRONTEND,
    ImageComponent.BACKEND: ArtifactType.DOCKER_BACKEND,
}
COMPONENT_BY_ARTIFACT_TYPE = {kind: component for component, kind in ARTIFACT_TYPE_BY_COMPONENT.items()}
DEFAULT_IMAGE_NAME_BY_COMPONENT = {
    component: IMAGE_NAME_BY_ARTIFACT_TYPE[kind] for component, kind in ARTIFACT_TYPE_BY_COMPONENT.items()
}

# Platforms an image may be built for; amd64 is mandatory (spec: "must include at least amd64").
KNOWN_ARCHITECTURES = ("amd64", "arm64", "arm", "ppc64le", "s390x", "386", "riscv64")
REQUIRED_ARCHITECTURE = "amd64"

# The one tag exempt from immutability (defined with the version sort keys, which order it last).
MOVING_TAG = versions.MOVING_TAG


class WithdrawalAction(models.TextChoices):
    """What one ``ReleaseWithdrawal`` record does: the two alternate, starting with ``withdraw``."""

    WITHDRAW = "withdraw"
    RESTORE = "restore"


class LatestTagState(models.TextChoices):
    """Where an image repository's ``latest`` tag stands (``LatestTag``), after a withdrawal or restore."""

    #: the move is enqueued, or being retried after the registry did not answer (``reason`` says so)
    MOVING = "moving"
    #: ``latest`` points at the newest published, not withdrawn, version
    CURRENT = "current"
    #: every published version is withdrawn: ``latest`` is left where it was (``reason`` says why)
    STRANDED = "stranded"
    #: the registry refused, or stayed unreachable through every retry (``reason`` names the error)
    FAILED = "failed"
