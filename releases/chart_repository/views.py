"""The Helm chart repository: ``GET /charts/index.yaml`` and ``GET /charts/<name>-<version>.tgz``."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

from ..http_caching import client_has
from ..models import HelmChart
from .index import chart_index


@require_safe
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
