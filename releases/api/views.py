"""Viewsets are declarations; workflow steps are actions that call a service and answer 202."""

from __future__ import annotations

import hashlib
import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from ..changelog import parse_release_notes, render_html
from ..choices import ReleaseState
from ..models import (
    AuditFinding,
    AuditRun,
    DockerImage,
    EnvironmentVariable,
    HelmChart,
    ReleaseArtifact,
    ReleaseVersion,
)
from ..services import TransitionRefused, publish_release, retry_release
from ..tasks import audit_published_tags
from ..validators import parse_semver
from ..versions import version_sort_key
from . import filters
from .caching import CachedListMixin
from .serializers import (
    AuditFindingSerializer,
    AuditRunSerializer,
    DockerImageSerializer,
    EnvironmentVariableSerializer,
    HelmChartSerializer,
    ReleaseArtifactSerializer,
    ReleaseListSerializer,
    ReleaseSerializer,
)

VERSION_PATTERN = r"[0-9A-Za-z.+-]+"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the request conflicts with the current state"
    default_code = "conflict"


def refused(error: TransitionRefused) -> Conflict:
    return Conflict({"detail": f"{error.transition_name} refused", "reasons": error.reasons})


def with_etag(request, data) -> Response:
    """Answer ``data`` with a strong ETag of its JSON, or 304 when the client already has it."""
    etag = '"' + hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32] + '"'
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = Response(status=status.HTTP_304_NOT_MODIFIED)
    else:
        response = Response(data)
    response["ETag"] = etag
    return response


class SemverOrderingFilter(OrderingFilter):
    """``?ordering=version`` sorts by semantic version (1.10.0 after 1.9.0), not by string."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        aliases = getattr(view, "ordering_aliases", {})
        return [self._alias(term, aliases) for term in ordering] if ordering else ordering

    @staticmethod
    def _alias(term: str, aliases: dict[str, str]) -> str:
        descending = term.startswith("-")
        field = aliases.get(term.lstrip("-"), term.lstrip("-"))
        return f"-{field}" if descending else field

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = set(getattr(view, "ordering_fields", []))
        return [term for term in fields if term.lstrip("-") in valid]


CHANGELOG_FORMATS = ("json", "markdown", "html")


def changelog_format(request) -> str:
    chosen = request.query_params.get("format", "json")
    if chosen not in CHANGELOG_FORMATS:
        raise exceptions.ValidationError({"format": [f"use one of {', '.join(CHANGELOG_FORMATS)}, not {chosen!r}"]})
    return chosen


def changelog_body(release: ReleaseVersion, chosen: str) -> dict:
    """One release's changelog as markdown, sanitized HTML, or structured sections."""
    markdown = release.changelog or release.release_notes
    body: dict = {"version": release.version, "format": chosen}
    if chosen == "markdown":
        body["markdown"] = markdown
    elif chosen == "html":
        body["html"] = render_html(markdown)
    else:
        body["sections"] = parse_release_notes(markdown).to_dict()["sections"]
    return body


class ReleaseChangelogMixin:
    @extend_schema(
        parameters=[OpenApiParameter("format", enum=CHANGELOG_FORMATS, default="json")],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True)
    def changelog(self, request, version: str):
        """The release's changelog: ``?format=json`` (sections), ``markdown`` or ``html`` (sanitized)."""
        return with_etag(request, changelog_body(self.get_object(), changelog_format(request)))


class ChangelogBetweenView(APIView):
    """``GET /api/v1/changelog/?from=1.0.0&to=1.2.0``: the sections of every release after ``from``
    up to and including ``to``, in semantic-version order."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", required=True, description="exclusive lower version"),
            OpenApiParameter("to", required=True, description="inclusive upper version"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        errors, bounds = {}, {}
        for name in ("from", "to"):
            value = request.query_params.get(name, "")
            try:
                parse_semver(value)
                bounds[name] = value
            except DjangoValidationError as error:
                errors[name] = error.messages if value else [f"give ?{name}=<version>, e.g. 1.2.0"]
        if errors:
            raise exceptions.ValidationError(errors)
        low, high = version_sort_key(bounds["from"]), version_sort_key(bounds["to"])
        if low >= high:
            raise exceptions.ValidationError({"to": [f"{bounds['to']} is not after {bounds['from']}"]})
        releases = ReleaseVersion.objects.filter(version_order__gt=low, version_order__lte=high).order_by(
            "version_order"
        )
        sections: dict[str, dict] = {}
        versions = []
        for release in releases:
            versions.append(release.version)
            for section in parse_release_notes(release.changelog or release.release_notes).to_dict()["sections"]:
                merged = sections.setdefault(
                    section["kind"], {"title": section["title"], "kind": section["kind"], "entries": []}
                )
                merged["entries"] += [{**entry, "version": release.version} for entry in section["entries"]]
        return with_etag(
            request,
            {"from": bounds["from"], "to": bounds["to"], "versions": versions, "sections": list(sections.values())},
        )


RELEASE_ACCEPTED = inline_serializer(
    "ReleaseAccepted",
    {"version": serializers.CharField(), "state": serializers.CharField(), "poll": serializers.URLField()},
)


class ReleaseViewSet(
    CachedListMixin, ReleaseChangelogMixin, mixins.CreateModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """Releases cut by Release Please: create, list, read by version, publish, retry."""

    queryset = ReleaseVersion.objects.prefetch_related(
        Prefetch("artifacts", queryset=ReleaseArtifact.objects.order_by("type"))
    )
    serializer_class = ReleaseSerializer
    filterset_class = filters.ReleaseFilter
    filter_backends = [*viewsets.GenericViewSet.filter_backends, SemverOrderingFilter]
    ordering_fields = ["version", "release_date", "published_at"]
    ordering_aliases = {"version": "version_order"}
    ordering = ["-version_order"]
    lookup_field = "version"
    lookup_value_regex = VERSION_PATTERN

    def get_serializer_class(self):
        return ReleaseListSerializer if self.action == "list" else ReleaseSerializer

    def perform_create(self, serializer) -> None:
        version = serializer.validated_data["version"]
        if ReleaseVersion.objects.filter(version=version).exists():
            raise Conflict(f"release {version} already exists; Release Please versions are created once")
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError:
            raise Conflict(f"release {version} already exists; Release Please versions are created once") from None

    def retrieve(self, request, version: str):
        return with_etag(request, self.get_serializer(self.get_object()).data)

    @action(detail=False)
    def latest(self, request):
        """The highest published version."""
        release = self.get_queryset().published().order_by("-version_order").first()
        if release is None:
            raise exceptions.NotFound("no release is published yet")
        return with_etag(request, self.get_serializer(release).data)

    @action(detail=True)
    def artifacts(self, request, version: str):
        release = self.get_object()
        return Response(ReleaseArtifactSerializer(release.artifacts.all(), many=True).data)

    def accepted(self, request, release: ReleaseVersion) -> Response:
        poll = reverse("release-detail", kwargs={"version": release.version}, request=request)
        return Response(
            {"version": release.version, "state": release.state, "poll": poll},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": poll},
        )

    @extend_schema(request=None, responses={202: RELEASE_ACCEPTED})
    @action(detail=True, methods=["post"])
    def publish(self, request, version: str):
        """Start publishing: plan both images and the chart, then build, push and index them."""
        release = self.get_object()
        if release.state == ReleaseState.PUBLISHED:
            raise Conflict(f"release {release.version} is already published; published versions are immutable")
        try:
            release = publish_release(release.pk, actor=request.user)
        except TransitionRefused as error:
            raise refused(error) from None
        return self.accepted(request, release)

    @extend_schema(request=None, responses={202: RELEASE_ACCEPTED})
    @action(detail=True, methods=["post"])
    def retry(self, request, version: str):
        """Resume a failed release; what was already pushed is reused, not rebuilt."""
        release = self.get_object()
        try:
            release = retry_release(release.pk, actor=request.user)
        except TransitionRefused as error:
            raise refused(error) from None
        return self.accepted(request, release)


class HealthView(APIView):
    """``GET /api/v1/health/``: the service answers (no database query). Also the benchmarks' baseline."""

    @extend_schema(responses={200: inline_serializer("Health", {"status": serializers.CharField()})})
    def get(self, request):
        return Response({"status": "ok"})


class DockerImageViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DockerImage.objects.all()
    serializer_class = DockerImageSerializer
    filterset_class = filters.DockerImageFilter
    filter_backends = [*viewsets.GenericViewSet.filter_backends, SemverOrderingFilter]
    ordering_fields = ["version", "name", "build_date"]
    ordering_aliases = {"version": "tag_order"}
    ordering = ["name", "-tag_order"]


class HelmChartViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = HelmChart.objects.prefetch_related("dependencies")
    serializer_class = HelmChartSerializer
    filterset_class = filters.HelmChartFilter
    filter_backends = [*viewsets.GenericViewSet.filter_backends, SemverOrderingFilter]
    ordering_fields = ["version", "name"]
    ordering_aliases = {"version": "version_order"}
    ordering = ["name", "-version_order"]


class EnvironmentVariableViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = EnvironmentVariable.objects.all()
    serializer_class = EnvironmentVariableSerializer
    filterset_class = filters.EnvironmentVariableFilter
    lookup_field = "name"


class AuditRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Tag-immutability audit runs; ``POST`` starts one (202)."""

    queryset = AuditRun.objects.all()
    serializer_class = AuditRunSerializer

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "AuditAccepted",
                {"status": serializers.CharField(), "task_id": serializers.CharField(), "poll": serializers.URLField()},
            )
        },
    )
    def create(self, request):
        result = audit_published_tags.delay(triggered_by=f"api:{request.user}")
        poll = reverse("audit-run-list", request=request)
        return Response(
            {"status": "queued", "task_id": result.id, "poll": poll},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": poll},
        )


class AuditFindingViewSet(viewsets.ReadOnlyModelViewSet):
    """Findings of the audits: ``?open=true`` for the ones the registry still disagrees on."""

    queryset = AuditFinding.objects.all()
    serializer_class = AuditFindingSerializer
    filterset_class = filters.AuditFindingFilter
