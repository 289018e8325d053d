"""Serializers. Input is validated by the model's own ``full_clean()``, so the API refuses what
the admin refuses, with the same words."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.reverse import reverse

from ..charts import mask_secret_values
from ..models import (
    AuditFinding,
    AuditRun,
    ChartDependency,
    DockerImage,
    EnvironmentVariable,
    HelmChart,
    ReleaseArtifact,
    ReleaseVersion,
)


class ModelCleanSerializer(serializers.ModelSerializer):
    """Runs ``Model.full_clean()`` on the would-be row and reports its errors per field (HTTP 400)."""

    def build_standard_field(self, field_name, model_field):
        # DRF turns Min/MaxValueValidators into its own min_value/max_value with its own words;
        # keep the model's validators so the messages are the model's (and the admin's).
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if kwargs.pop("min_value", None) is not None or kwargs.pop("max_value", None) is not None:
            kwargs["validators"] = list(model_field.validators)
        return field_class, kwargs

    def to_internal_value(self, data):
        # DRF stops at its own field errors and never reaches validate(): the model's rules on the
        # other fields would only show up on the next attempt. Report them all in one 400.
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict) or not isinstance(data, Mapping):
                raise
            failed = set(error.detail)
            model_errors = self._model_errors(self._values_that_pass(data, failed), exclude=failed)
            raise serializers.ValidationError({**model_errors, **error.detail}) from None

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        errors = self._model_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _values_that_pass(self, data: Mapping, failed: set[str]) -> dict:
        values = {}
        for field in self._writable_fields:
            if field.field_name in failed:
                continue
            try:
                values[field.source] = field.run_validation(field.get_value(data))
            except (serializers.ValidationError, DjangoValidationError, SkipField):
                continue
        return values

    def _model_errors(self, values: dict, exclude: Collection[str] = ()) -> dict:
        """The errors of ``Model.full_clean()`` on the would-be row, per field, leaving out ``exclude``."""
        model = self.Meta.model
        concrete = {f.name for f in model._meta.concrete_fields}
        candidate = model(**{k: v for k, v in values.items() if k in concrete})
        try:
            candidate.full_clean(exclude=exclude, validate_unique=False)
        except DjangoValidationError as error:
            detail = serializers.as_serializer_error(error)
            return {field: messages for field, messages in detail.items() if field not in exclude}
        return {}


class ReleaseArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReleaseArtifact
        fields = ["type", "uri", "checksum", "size", "created"]


class StalledSinceField(serializers.DateTimeField):
    """When an active row last made progress, once it has made none for ``STALLED_AFTER_MINUTES``; else null."""

    def __init__(self, **kwargs) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)


class ReleaseSerializer(ModelCleanSerializer):
    artifacts = ReleaseArtifactSerializer(many=True, read_only=True)
    stalled_since = StalledSinceField()
    links = serializers.SerializerMethodField()
    signing = serializers.SerializerMethodField()

    class Meta:
        model = ReleaseVersion
        fields = [
            "version",
            "state",
            "release_date",
            "commit_sha",
            "pr_number",
            "changelog",
            "release_notes",
            "failure_reason",
            "failed_artifact",
            "published_at",
            "layout",
            "last_progress_at",
            "stalled_since",
            "artifacts",
            "signing",
            "links",
        ]
        read_only_fields = ["state", "failure_reason", "failed_artifact", "published_at", "last_progress_at", "layout"]
        # A duplicate version is a conflict (409), answered by the view, not a field error. Its
        # length is the model's rule too (validate_semver says why 128 and what to do).
        extra_kwargs = {"version": {"validators": [], "max_length": None}}

    def get_signing(self, release: ReleaseVersion) -> dict:
        """``signed`` when every artifact was signed at publication; the key id per artifact (null: unsigned)."""
        artifacts = list(release.artifacts.all())
        images = dict(
            DockerImage.objects.filter(pk__in=[a.docker_image_id for a in artifacts if a.docker_image_id]).values_list(
                "pk", "signed_with"
            )
        )
        charts = dict(
            HelmChart.objects.filter(pk__in=[a.helm_chart_id for a in artifacts if a.helm_chart_id]).values_list(
                "pk", "signed_with"
            )
        )
        keys = {
            artifact.type: (images.get(artifact.docker_image_id) or charts.get(artifact.helm_chart_id) or None)
            for artifact in artifacts
        }
        return {"signed": bool(keys) and all(keys.values()), "signed_with": keys}

    def get_links(self, release: ReleaseVersion) -> dict[str, str]:
        # One reverse() per response, not five per release: URL resolving dominated list pages.
        if "release_base_url" not in self.context:
            self.context["release_base_url"] = reverse("release-list", request=self.context.get("request"))
        detail = f"{self.context['release_base_url']}{release.version}/"
        return {
            "self": detail,
            "artifacts": f"{detail}artifacts/",
            "changelog": f"{detail}changelog/",
            "publish": f"{detail}publish/",
            "retry": f"{detail}retry/",
        }


# No stalled_since in lists: list pages are cached until the data changes, and a release becomes
# stalled by time passing, not by a write (the detail and the image/chart lists have it). No signing
# either: it reads the images and charts of each release (two queries per release).
DETAIL_ONLY_RELEASE_FIELDS = {
    "changelog",
    "release_notes",
    "links",
    "layout",
    "last_progress_at",
    "stalled_since",
    "signing",
}


class ReleaseListSerializer(ReleaseSerializer):
    """Lists leave out the long texts and the action links; the detail (``url``) has them."""

    url = serializers.SerializerMethodField()

    class Meta(ReleaseSerializer.Meta):
        fields = [f for f in ReleaseSerializer.Meta.fields if f not in DETAIL_ONLY_RELEASE_FIELDS] + ["url"]

    def get_url(self, release: ReleaseVersion) -> str:
        return self.get_links(release)["self"]


class LinkedVariableSerializer(serializers.ModelSerializer):
    """An environment variable an image or chart takes; a secret's value is never returned (null)."""

    default_value = serializers.SerializerMethodField()

    class Meta:
        model = EnvironmentVariable
        fields = ["name", "default_value", "description", "required", "scope", "secret"]

    def get_default_value(self, variable: EnvironmentVariable) -> str | None:
        return None if variable.secret else variable.default_value


class DockerImageSerializer(serializers.ModelSerializer):
    """``signed``: whether publishing signed it (``signed_with`` names the key, ``signatures`` the
    cosign ``.sig``/``.att`` manifests per digest); its provenance and SBOM are at ``provenance/``
    and ``sbom/``."""

    environment_variables = LinkedVariableSerializer(many=True, read_only=True)
    stalled_since = StalledSinceField()
    signed = serializers.BooleanField(source="is_signed", read_only=True)

    class Meta:
        model = DockerImage
        fields = [
            "name",
            "tag",
            "component",
            "registry",
            "architecture",
            "base_image",
            "stage_bases",
            "size",
            "digest",
            "build_date",
            "labels",
            "platform_digests",
            "build_steps",
            "context_path",
            "dockerfile_path",
            "build_args",
            "environment_variables",
            "state",
            "progress",
            "last_progress_at",
            "stalled_since",
            "failure_reason",
            "scan_findings",
            "signed",
            "signed_with",
            "signatures",
        ]


class ChartDependencySerializer(serializers.ModelSerializer):
    class Meta:
        model = ChartDependency
        fields = ["name", "version", "repository", "condition", "locked_version", "archive_digest"]


class HelmChartSerializer(serializers.ModelSerializer):
    """``values`` (as published: pinned to the release's image digests) never show a secret
    variable's value, however it got into the chart."""

    dependencies = ChartDependencySerializer(many=True, read_only=True)
    environment_variables = LinkedVariableSerializer(many=True, read_only=True)
    values = serializers.SerializerMethodField()
    signed = serializers.BooleanField(source="is_signed", read_only=True)

    def get_values(self, chart: HelmChart) -> dict:
        root = self.root
        if not hasattr(root, "_secret_names"):  # one query per response, not per chart
            root._secret_names = frozenset(
                EnvironmentVariable.objects.filter(secret=True).values_list("name", flat=True)
            )
        return mask_secret_values(chart.values, root._secret_names)

    stalled_since = StalledSinceField()

    class Meta:
        model = HelmChart
        fields = [
            "name",
            "chart_version",
            "app_version",
            "description",
            "registry",
            "dependencies",
            "chart_metadata",
            "values",
            "image_pins",
            "templates",
            "environment_variables",
            "digest",
            "size",
            "state",
            "progress",
            "last_progress_at",
            "stalled_since",
            "problems",
            "warnings",
            "signed",
            "signed_with",
            "signatures",
        ]


class EnvironmentVariableSerializer(serializers.ModelSerializer):
    """Secret values are never returned: ``default_value`` is null for a secret variable."""

    default_value = serializers.SerializerMethodField()

    class Meta:
        model = EnvironmentVariable
        fields = ["name", "default_value", "description", "required", "scope", "secret"]

    def get_default_value(self, variable: EnvironmentVariable) -> str | None:
        return None if variable.secret else variable.default_value


class AuditRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditRun
        fields = [
            "id",
            "started",
            "finished",
            "status",
            "tags_checked",
            "findings_by_type",
            "new_findings",
            "resolved_findings",
            "triggered_by",
            "error",
        ]


class AuditFindingSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditFinding
        fields = [
            "id",
            "type",
            "severity",
            "artifact",
            "repository",
            "tag",
            "expected",
            "actual",
            "detail",
            "first_seen",
            "last_seen",
            "resolved_at",
        ]
