"""The Helm chart repository's ``index.yaml``, rendered once per set of indexed charts (those of
withdrawn releases left out; their ``.tgz`` stays downloadable by its exact URL).

The cache key is the charts' ``DataGeneration``, bumped in the transaction of every chart change
and read with one primary-key lookup: the index is regenerated only after a chart changed,
whichever process changed it, and the generation doubles as the ``ETag``.
"""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

from releases.http.caching import etag_of

from ..charts import IndexEntry, render_index
from ..models import DataGeneration, HelmChart, ReleaseVersion


def chart_index_generation() -> str:
    return f"charts@{DataGeneration.current(DataGeneration.CHARTS)}"


def render_chart_index() -> bytes:
    # A withdrawn release's chart is left out: Helm has no per-version deprecation (a deprecated
    # newest entry hides the whole chart) and ``helm install`` without ``--version`` picks the newest.
    withdrawn = ReleaseVersion.objects.withdrawn().values("version")
    charts = (
        HelmChart.objects.indexed()
        .exclude(app_version__in=withdrawn)
        .prefetch_related("dependencies")
        .order_by("name", "-version_order")
    )
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
            metadata=chart.chart_metadata or {},
        )
        for chart in charts
    ]
    return render_index(entries, generated=timezone.now())


def chart_index() -> tuple[bytes, str]:
    """``(index.yaml bytes, ETag)``, from the cache unless a chart was indexed since."""
    generation = chart_index_generation()
    etag = etag_of(generation)
    key = f"chart-index:{etag}"
    body = cache.get(key)
    if body is None:
        body = render_chart_index()
        cache.set(key, body, timeout=None)
    return body, etag
