"""The Helm chart repository: ``GET /charts/index.yaml`` and ``GET /charts/<name>-<version>.tgz``.

Readable like the API: by anyone when ``API_READS_PUBLIC``, else with an API token (any scope)
as the HTTP basic password (``helm repo add --username x --password <token>``) or as a bearer
token, or with a staff session; anything else is answered 401 with a ``Basic`` challenge.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_safe

from releases.http.caching import client_has

from ..models import ApiToken, HelmChart
from .index import chart_index


def chart_reader_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if settings.API_READS_PUBLIC:
            return view(request, *args, **kwargs)
        if getattr(request.user, "is_staff", False) or ApiToken.from_authorization(
            request.headers.get("Authorization", "")
        ):
            # Private answers: a shared cache must not hand them to someone without the token.
            response = view(request, *args, **kwargs)
            patch_vary_headers(response, ("Authorization", "Cookie"))
            patch_cache_control(response, private=True)
            return response
        response = HttpResponse(
            "the chart repository needs an API token: helm repo add <name> <url> --username x --password <token>\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Basic realm="charts", charset="UTF-8"'
        return response

    return guarded


@require_safe
@chart_reader_required
def chart_repository_index(request: HttpRequest) -> HttpResponse:
    body, etag = chart_index()
    response = (
        HttpResponseNotModified()
        if client_has(request, etag)
        else HttpResponse(body, content_type="application/x-yaml")
    )
    response["ETag"] = etag
    return response


@require_safe
@chart_reader_required
def chart_package(request: HttpRequest, name: str, version: str) -> HttpResponse:
    chart = (
        HelmChart.objects.indexed().filter(name=name, chart_version=version).only("package", "package_digest").first()
    )
    if chart is None:
        raise Http404(f"no indexed chart {name} {version}")
    etag = f'"{chart.package_digest}"'
    if client_has(request, etag):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(bytes(chart.package), content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{name}-{version}.tgz"'
    response["ETag"] = etag
    return response
