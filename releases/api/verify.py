"""``/api/v1/verify/``: is a reference ours, published, signed and not withdrawn
(``releases.trust.verify``)? Reads, for the API's readers: ``API_READS_PUBLIC``, else any token or
a staff session; the batch ``POST`` is a read too."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import ApiToken
from ..trust.verify import ReferencesInvalid, report, verify_references
from .rendering import OrjsonParser, OrjsonRenderer


class ReadsOnly(permissions.BasePermission):
    """Like the API's reads (``ReadOrWriteToken``), for GET and for the batch POST alike."""

    message = "this needs an API token (any scope) or a staff session while API_READS_PUBLIC is false"

    def has_permission(self, request, view) -> bool:
        if settings.API_READS_PUBLIC or isinstance(request.auth, ApiToken):
            return True
        return bool(getattr(request.user, "is_staff", False))


def _answers(texts: list[str], field: str) -> list[dict]:
    try:
        return [report(result) for result in verify_references(texts, refuse_invalid=True)]
    except ReferencesInvalid as error:
        raise exceptions.ValidationError({field: error.problems}) from None


class VerifyView(APIView):
    """``GET /api/v1/verify/?image=<reference>``: whether it is ours and, if so, its release,
    artifact (index, platform manifest or chart), component, platform, signature and attestations
    (by a trusted key), open audit findings, whether the registry was last seen answering another
    digest for its tag, and its withdrawal. ``verified`` is true only for ours, published, signed
    where signing is configured, and not withdrawn. ``POST`` a JSON list of references (or
    ``{"images": [...]}``), at most ``VERIFY_BATCH_MAX``, for the same answer about each, in order."""

    permission_classes = [ReadsOnly]
    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]
    parser_classes = [OrjsonParser, FormParser, MultiPartParser]  # DRF's defaults, JSON's by orjson

    @extend_schema(
        parameters=[OpenApiParameter("image", required=True, description="a tag or digest reference")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        images = request.query_params.getlist("image")
        if len(images) != 1 or not images[0].strip():
            raise exceptions.ValidationError({"image": ["give one reference: ?image=ghcr.io/org/app:1.0.0"]})
        return Response(_answers(images, "image")[0])

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        data = request.data
        images = data.get("images") if isinstance(data, dict) else data
        cap = settings.VERIFY_BATCH_MAX
        if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
            raise exceptions.ValidationError(
                {"images": ['send a JSON list of references, e.g. ["ghcr.io/org/app:1.0.0"], or {"images": [...]}']}
            )
        if len(images) > cap:
            raise exceptions.ValidationError(
                {"images": [f"{len(images)} references; at most {cap} (VERIFY_BATCH_MAX) per request, send several"]}
            )
        return Response({"count": len(images), "results": _answers(images, "images")})
