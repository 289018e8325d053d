"""The Helm chart repository's ``index.yaml``, rendered once per set of indexed charts.

The cache key is the "generation" of the indexed charts (how many, and when the last one was
indexed), read with one aggregate query: the index is regenerated only when a chart is indexed,
whichever process indexed it, and the generation doubles as the ``ETag``.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db.models import Count, Max
from django.utils import timezone

from .charts import IndexEntry, render_index
from .models import HelmChart


def chart_index_generation() -> str:
    stats = HelmChart.objects.indexed().aggregate(count=Count("pk"), last=Max("indexed_at"))
    last = stats["last"].isoformat() if stats["last"] else "never"
    return f"{stats['count']}@{last}"


def render_chart_index() -> bytes:
    charts = HelmChart.objects.indexed().prefetch_related("dependencies").order_by("name", "-version_order")
    entries = [
        IndexEntry(
            name=chart.name,
            version=chart.chart_version,
            app_version=chart.app_version,
            description=chart.description,
            digest=chart.package_digest.removeprefix("sha256:"),
            created=chart.indexed_at,
            urls=[f"{chart.name}-{chart.chart_version}.tgz"],
            dependencies=[
                {
                    k: v
                    for k, v in (
                        ("name", d.name),
                        ("version", d.version),
                        ("repository", d.repository),
                        ("condition", d.condition),
                    )
                    if v
                }
                for d in chart.dependencies.all()
            ],
        )
        for chart in charts
    ]
    return render_index(entries, generated=timezone.now())


def chart_index() -> tuple[bytes, str]:
    """``(index.yaml bytes, ETag)``, from the cache unless a chart was indexed since."""
    generation = chart_index_generation()
    etag = '"' + hashlib.sha256(generation.encode()).hexdigest()[:32] + '"'
    key = f"chart-index:{etag}"
    body = cache.get(key)
    if body is None:
        body = render_chart_index()
        cache.set(key, body, timeout=None)
    return body, etag
