"""Viewsets are declarations; workflow steps are actions that call a service and answer 202."""

from __future__ import annotations

import base64
import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from releases import services
from releases.adapters.registry_client import registry_client
from releases.adapters.signing_keys import published_keys
from releases.observability import health

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
from ..oci import RegistryError
from ..pipelines.signing import read_sboms
from ..transitions import TransitionRefused, public_text
from ..trust.withdrawal import restore_release, withdraw_release
from . import filters, withdrawal
from .caching import CachedListMixin, cached_json, with_etag
from .changelog import CHANGELOG_FORMATS, changelog_between, changelog_body, changelog_format, version_bounds
from .errors import Conflict, refused
from .filters import SemverOrderingFilter
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
    up to and including ``to``, in semantic-version order, from the stored parsed notes and cached
    per generation of the releases. At most ``CHANGELOG_RANGE_MAX_RELEASES`` releases at once: a
    wider range is paged with ``?page=`` (and ``page_size``), else refused (400)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", required=True, description="exclusive lower version"),
            OpenApiParameter("to", required=True, description="inclusive upper version"),
            OpenApiParameter("page", int, description="page of the range; required when it is past the cap"),
            OpenApiParameter("page_size", int, description="releases per page, up to the cap (the default)"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        def answer() -> Response:
            return Response(changelog_between(request, *version_bounds(request.query_params)))

        return cached_json(request, "changelog-between", answer)


RELEASE_ACCEPTED = inline_serializer(
    "ReleaseAccepted",
    {"version": serializers.CharField(), "state": serializers.CharField(), "poll": serializers.URLField()},
)


class ReleaseViewSet(
    CachedListMixin, ReleaseChangelogMixin, mixins.CreateModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """Releases cut by Release Please: create, list, read by version, publish, retry."""

    queryset = ReleaseVersion.objects.with_withdrawal().prefetch_related(
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
    #: the use case (and so the permission, for a session) of each write
    use_cases = {
        "create": "create_release",
        "publish": "publish_release",
        "retry": "retry_release",
        "withdraw": "withdraw_release",
        "restore": "restore_release",
    }

    def get_serializer_class(self):
        return ReleaseListSerializer if self.action == "list" else ReleaseSerializer

    def perform_create(self, serializer) -> None:
        fields = ("version", "commit_sha", "pr_number", "changelog", "release_notes", "release_date")
        try:
            serializer.instance = services.create_release(
                **{name: value for name, value in serializer.validated_data.items() if name in fields}
            )
        except services.ReleaseExists as exists:
            raise Conflict(str(exists)) from None
        except DjangoValidationError as error:
            raise exceptions.ValidationError(serializers.as_serializer_error(error)) from None

    def retrieve(self, request, version: str):
        return with_etag(request, self.get_serializer(self.get_object()).data)

    @action(detail=False)
    def latest(self, request):
        """The highest published version that is not withdrawn."""
        release = self.get_queryset().published().not_withdrawn().order_by("-version_order").first()
        if release is None:
            raise exceptions.NotFound(withdrawal.no_latest_reason())
        return with_etag(request, self.get_serializer(release).data)

    @extend_schema(request=withdrawal.WithdrawalRequestSerializer, responses={200: withdrawal.WithdrawalSerializer})
    @action(detail=True, methods=["post"])
    def withdraw(self, request, version: str):
        """Withdraw a published release (``reason`` required): ``latest`` and ``index.yaml`` skip it;
        nothing published changes."""
        return withdrawal.record(request, version, withdraw_release)

    @extend_schema(request=withdrawal.WithdrawalRequestSerializer, responses={200: withdrawal.WithdrawalSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request, version: str):
        """Undo a withdrawal (``reason`` required, recorded too)."""
        return withdrawal.record(request, version, restore_release)

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
            release = services.publish_release(release.pk, actor=request.user)
        except TransitionRefused as error:
            raise refused(error) from None
        return self.accepted(request, release)

    @extend_schema(request=None, responses={202: RELEASE_ACCEPTED})
    @action(detail=True, methods=["post"])
    def retry(self, request, version: str):
        """Resume a failed release; what was already pushed is reused, not rebuilt."""
        release = self.get_object()
        try:
            release = services.retry_release(release.pk, actor=request.user)
        except TransitionRefused as error:
            raise refused(error) from None
        return self.accepted(request, release)


class HealthView(APIView):
    """``GET /api/v1/health/``: the service answers (no database query). Also the benchmarks' baseline."""

    @extend_schema(responses={200: inline_serializer("Health", {"status": serializers.CharField()})})
    def get(self, request):
        return Response({"status": "ok"})


class ReadinessView(APIView):
    """``GET /api/v1/health/ready/``: 200 when PostgreSQL, the broker and the registry answer (and
    the Docker engine, where ``HEALTH_CHECK_ENGINE`` is on), else 503 naming the failing checks;
    each check's status and latency in ms either way. Never cached, no token needed."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request):
        ready, body = health.readiness()
        response = Response(body, status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Cache-Control"] = "no-store"
        return response


class DockerImageViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DockerImage.objects.prefetch_related("environment_variables")
    serializer_class = DockerImageSerializer
    filterset_class = filters.DockerImageFilter
    filter_backends = [*viewsets.GenericViewSet.filter_backends, SemverOrderingFilter]
    ordering_fields = ["version", "name", "build_date"]
    ordering_aliases = {"version": "tag_order"}
    ordering = ["name", "-tag_order"]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True)
    def provenance(self, request, pk=None):
        """The signed SLSA provenance of each platform image, as attached to its manifest (DSSE
        envelope: verify its signature over the PAE with a key of ``signing/keys/``) and decoded."""
        image = self.get_object()
        if not image.provenance:
            raise exceptions.NotFound(f"{image.reference} has no provenance: it was published unsigned or not yet")
        platforms = {}
        for platform, envelope in sorted(image.provenance.items()):
            digest = image.platform_digests[platform]["digest"]
            platforms[platform] = {
                "digest": digest,
                "attestations": image.signatures.get(digest, {}).get("attestation", ""),
                "envelope": envelope,
                "statement": json.loads(base64.b64decode(envelope["payload"])),
            }
        body = {"image": image.reference, "digest": image.digest, "signed_with": image.signed_with}
        return with_etag(request, {**body, "platforms": platforms})

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True)
    def sbom(self, request, pk=None):
        """The SPDX SBOM of each platform image, read from its signed attestation in the registry
        (only ones a trusted key signed)."""
        image = self.get_object()
        if not image.is_signed:
            raise exceptions.NotFound(f"{image.reference} was published unsigned: it carries no SBOM attestation")
        try:
            with registry_client(image.registry_host) as client:
                sboms = read_sboms(client, image)
        except RegistryError as error:
            raise RegistryUnreachable(f"the registry could not be read: {public_text(str(error))}") from None
        if not sboms:
            raise exceptions.NotFound(f"no SBOM signed by a trusted key is attached to {image.reference}")
        return with_etag(request, {"image": image.reference, "digest": image.digest, "platforms": sboms})


class RegistryUnreachable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "the registry could not be read; try again later"


class SigningKeysView(APIView):
    """``GET /api/v1/signing/keys/``: the public keys releases are verified with: the signing key's
    (``signing: true``) and those of ``TRUSTED_SIGNING_KEYS`` (rotated out, still verifying older
    releases), as PEM with their key ids. ``cosign verify --key`` takes the PEM as is."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        keys = published_keys()
        signing = next((key.key_id for key in keys if key.signing), None)
        return Response(
            {
                "signing_key_id": signing,
                "signed": signing is not None,
                "keys": [{"key_id": key.key_id, "signing": key.signing, "pem": key.pem} for key in keys],
            }
        )


class SigningPublicKeyView(APIView):
    """``GET /api/v1/signing/cosign.pub``: the signing key's public half as a bare PEM
    (``cosign verify --key https://<host>/api/v1/signing/cosign.pub``); 404 when releases are unsigned."""

    @extend_schema(responses={(200, "application/x-pem-file"): OpenApiTypes.STR})
    def get(self, request):
        signing = [key for key in published_keys() if key.signing]
        if not signing:
            raise exceptions.NotFound("no SIGNING_KEY is configured: releases are published unsigned")
        return HttpResponse(signing[0].pem, content_type="application/x-pem-file")


class HelmChartViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = HelmChart.objects.prefetch_related("dependencies", "environment_variables")
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
    use_cases = {"create": "start_audit"}

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
        task_id = services.start_audit(triggered_by=f"api:{request.user}")
        poll = reverse("audit-run-list", request=request)
        return Response(
            {"status": "queued", "task_id": task_id, "poll": poll},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": poll},
        )


class AuditFindingViewSet(viewsets.ReadOnlyModelViewSet):
    """Findings of the audits: ``?open=true`` for the ones the registry still disagrees on."""

    queryset = AuditFinding.objects.all()
    serializer_class = AuditFindingSerializer
    filterset_class = filters.AuditFindingFilter
