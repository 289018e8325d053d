from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, transition

from ..choices import ChartState, ImageState
from ..layout import ReleaseLayout
from ..validators import (
    SHA256_DIGEST_PATTERN,
    validate_http_url,
    validate_registry,
    validate_repository_name,
    validate_semver,
    validate_sha256_digest,
    validate_version_constraint,
)
from ..versions import MAX_VERSION_LENGTH, SORT_KEY_MAX_LENGTH, column_sort_key
from .base import RegistryArtifact, StalledQuerySetMixin
from .images import DockerImage, ImmutableTagError, default_release_layout

ACTIVE_CHART_STATES = (ChartState.VALIDATING, ChartState.PACKAGING, ChartState.UPLOADING)


def default_chart_registry() -> str:
    return f"{settings.REGISTRY_NAMESPACE}/chart"


class HelmChartQuerySet(StalledQuerySetMixin, models.QuerySet):
    active_states = ACTIVE_CHART_STATES

    def indexed(self) -> HelmChartQuerySet:
        return self.filter(state=ChartState.INDEXED)


class HelmChart(RegistryArtifact):
    """The Kubernetes deployment package of one app version.

    State machine (``state``)::

        validating -> packaging -> uploading -> indexed
            |             |            |
            +-------------+------------+--> invalid --retry--> validating

    ``indexed`` is final and the chart version is then immutable. Packaging may only start when
    the frontend and backend images of ``app_version`` are ``available`` (dependency order).
    Refuses: non-semver ``chart_version``/``app_version``; an ``app_version`` with no images;
    a registry outside ``REGISTRY_NAMESPACE``; ``indexed`` without a digest.
    """

    name = models.CharField(max_length=128, default="threek8s", validators=[validate_repository_name])
    chart_version = models.CharField(max_length=MAX_VERSION_LENGTH, validators=[validate_semver])
    version_order = models.CharField(
        max_length=SORT_KEY_MAX_LENGTH,
        default="",
        editable=False,
        db_index=True,
        help_text="Sorts by semver whatever the collation (releases.versions.column_sort_key).",
    )
    app_version = models.CharField(max_length=MAX_VERSION_LENGTH, validators=[validate_semver])
    description = models.TextField(blank=True)
    registry = models.CharField(max_length=255, default=default_chart_registry, validators=[validate_registry])
    values = models.JSONField(default=dict, blank=True, help_text="values.yaml: the default values.")
    templates = models.JSONField(default=list, blank=True, help_text="Template file names.")
    chart_metadata = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "The Chart.yaml fields the chart repository's index.yaml carries, as helm repo index does: home, "
            "sources, keywords, maintainers, icon, annotations, kubeVersion, type, deprecated."
        ),
    )
    package = models.BinaryField(blank=True, editable=False, help_text="The reproducible .tgz, as pushed.")
    package_digest = models.CharField(
        max_length=71, blank=True, validators=[validate_sha256_digest], help_text="sha256 of the .tgz."
    )
    indexed_at = models.DateTimeField(null=True, blank=True)
    environment_variables = models.ManyToManyField(
        "releases.EnvironmentVariable", blank=True, related_name="helm_charts"
    )
    state = FSMField(default=ChartState.VALIDATING, choices=ChartState.choices, protected=True)
    problems = models.JSONField(default=list, blank=True, help_text="Every problem found, when invalid.")
    warnings = models.JSONField(
        default=list, blank=True, help_text="What validation noticed without refusing (images outside the namespace)."
    )
    image_pins = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per component, the values the published chart was pinned with (registry, repository, tag@digest).",
    )

    objects = HelmChartQuerySet.as_manager()
    active_states = ACTIVE_CHART_STATES

    class Meta:
        ordering = ["name", "-created"]
        indexes = [
            models.Index(fields=["app_version"], name="chart_app_version_idx"),
            models.Index(fields=["digest"], name="chart_digest_idx"),  # verify by digest
        ]
        constraints = [
            RegistryArtifact.version_once("chart_version", "chart_version_unique", "chart version"),
            models.CheckConstraint(
                condition=~Q(state=ChartState.INDEXED) | Q(digest__regex=SHA256_DIGEST_PATTERN),
                name="chart_indexed_has_digest",
            ),
            *RegistryArtifact.registry_constraints("chart", ChartState),
        ]

    def __str__(self) -> str:
        return f"{self.repository}:{self.chart_version}"

    def app_image_names(self) -> dict[str, str]:
        """Component -> image name, as the release of ``app_version`` was planned (its layout)."""
        # By name, not import: the release model imports this one.
        release_model = apps.get_model("releases", "ReleaseVersion")
        stored = release_model.objects.filter(version=self.app_version).values_list("layout", flat=True).first()
        return ReleaseLayout.from_json(stored, defaults=default_release_layout()).names()

    def app_images(self) -> models.QuerySet:
        """The frontend and backend images this chart's ``app_version`` refers to."""
        return DockerImage.objects.filter(tag=self.app_version, name__in=self.app_image_names().values())

    def missing_app_images(self, *, require_available: bool) -> list[str]:
        names = self.app_image_names()
        found = {
            image.name: image for image in DockerImage.objects.filter(tag=self.app_version, name__in=names.values())
        }
        problems = []
        for name in names.values():
            image = found.get(name)
            if image is None:
                problems.append(f"image {name}:{self.app_version} does not exist; plan or build it first")
            elif require_available and image.state != ImageState.AVAILABLE:
                problems.append(
                    f"image {name}:{self.app_version} is {image.state}, not available; "
                    "charts are published only after their images"
                )
        return problems

    # Validation ---------------------------------------------------------------------------
    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.app_version and self.state != ChartState.INVALID:
            problems = self.missing_app_images(require_available=self.state != ChartState.VALIDATING)
            if problems:
                errors["app_version"] = problems
        if self.state == ChartState.INDEXED and not self.digest:
            errors["digest"] = ["an indexed chart needs the digest its upload produced"]
        if errors:
            raise ValidationError(errors)
        self._refuse_immutable_change()

    def _refuse_immutable_change(self) -> None:
        if self.pk is None:
            return
        stored = (
            type(self)
            .objects.filter(pk=self.pk)
            .values("state", "chart_version", "app_version", "name", "registry", "digest")
            .first()
        )
        if not stored or stored["state"] != ChartState.INDEXED:
            return
        fields = ("chart_version", "app_version", "name", "registry", "digest")
        changed = [f for f in fields if getattr(self, f) != stored[f]]
        if changed:
            raise ImmutableTagError(
                {
                    field: (
                        f"chart version {stored['chart_version']} is already published with digest "
                        f"{stored['digest']}; published versions are immutable, publish a new version instead"
                    )
                    for field in changed
                }
            )

    def save(self, *args, **kwargs) -> None:
        self._refuse_immutable_change()
        self.version_order = column_sort_key(self.chart_version)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.state == ChartState.INDEXED:
            raise ImmutableTagError(f"{self} is published; published versions are kept as the audit trail")
        return super().delete(*args, **kwargs)

    # State machine ------------------------------------------------------------------------
    @transition(
        field=state,
        source=ChartState.VALIDATING,
        target=ChartState.PACKAGING,
        conditions=[lambda chart: not chart.guard_start_packaging()],
    )
    def start_packaging(self) -> None:
        self.problems = []

    def guard_start_packaging(self) -> list[str]:
        return self.missing_app_images(require_available=True)

    @transition(field=state, source=ChartState.PACKAGING, target=ChartState.UPLOADING)
    def start_upload(self) -> None:
        pass

    @transition(
        field=state,
        source=ChartState.UPLOADING,
        target=ChartState.INDEXED,
        conditions=[lambda chart: not chart.guard_mark_indexed()],
    )
    def mark_indexed(self) -> None:
        self.progress = "indexed"
        self.indexed_at = timezone.now()

    def guard_mark_indexed(self) -> list[str]:
        return [] if self.digest else ["the chart digest is not recorded yet; upload the chart first"]

    @transition(
        field=state,
        source=ACTIVE_CHART_STATES,
        target=ChartState.INVALID,
        custom={"admin": True, "label": "Mark invalid"},
    )
    def reject(self, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])

    @transition(
        field=state,
        source=ChartState.INVALID,
        target=ChartState.VALIDATING,
        custom={"admin": True, "label": "Retry", "help_text": "Validate the chart again."},
    )
    def retry(self) -> None:
        self.problems = []
        self.progress = ""


class ChartDependency(models.Model):
    """An external chart the Helm chart depends on (``dependencies:`` in Chart.yaml), as Chart.lock
    pins it: the version packaged in the chart's ``charts/`` folder and the sha256 of that archive.

    Written only by a validation that found no problem; frozen with the chart once it is indexed.
    """

    chart = models.ForeignKey(HelmChart, on_delete=models.CASCADE, related_name="dependencies")
    name = models.CharField(max_length=128, validators=[validate_repository_name])
    version = models.CharField(max_length=128, help_text="A version or constraint, e.g. ^1.2.0 or ~15.x.")
    repository = models.CharField(max_length=500, validators=[validate_http_url])
    condition = models.CharField(max_length=255, blank=True)
    locked_version = models.CharField(
        max_length=MAX_VERSION_LENGTH, blank=True, help_text="The version Chart.lock pins (helm dependency build)."
    )
    archive_digest = models.CharField(
        max_length=71,
        blank=True,
        validators=[validate_sha256_digest],
        help_text="sha256 of the dependency's .tgz packaged in charts/ (empty when vendored unpacked).",
    )
    lock_digest = models.CharField(
        max_length=71,
        blank=True,
        validators=[validate_sha256_digest],
        help_text="Chart.lock's digest (of Chart.yaml's dependencies and the lock) when the chart was validated.",
    )

    class Meta:
        ordering = ["chart", "name"]
        verbose_name_plural = "chart dependencies"
        constraints = [
            models.UniqueConstraint(fields=["chart", "name"], name="chart_dependency_unique"),
            models.CheckConstraint(condition=~Q(version=""), name="chart_dependency_version_required"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    def clean(self) -> None:
        try:
            validate_version_constraint(self.version)
        except ValidationError as error:
            raise ValidationError({"version": error.messages}) from None
        if self.chart_id and self.chart.state == ChartState.INDEXED:
            raise ImmutableTagError("the chart is published; its dependencies cannot change")
