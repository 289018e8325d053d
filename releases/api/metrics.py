"""``GET /metrics``: Prometheus text exposition (``releases.observability.metrics``). Scrape it over the private
network; the TLS proxy need not publish it."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from releases.observability.metrics import exposition


@require_GET
def metrics_view(request) -> HttpResponse:
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
