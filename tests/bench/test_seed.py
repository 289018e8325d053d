"""The benchmarks' seeders insert under the product's rules: the immutability triggers stay on, and
still refuse what they refuse once the rows are published."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from bench import _seed
from releases.choices import ArtifactType, ChartState, ReleaseState
from releases.models import ChartDependency, HelmChart, ReleaseArtifact, ReleaseVersion

pytestmark = pytest.mark.django_db


def test_seeded_releases_are_published_with_their_artifacts_and_stay_immutable():
    artifacts = _seed.published_releases(3)

    assert artifacts == 9
    assert list(ReleaseVersion.objects.order_by("version_order").values_list("version", "state")) == [
        ("1.0.0", ReleaseState.PUBLISHED),
        ("1.0.1", ReleaseState.PUBLISHED),
        ("1.0.2", ReleaseState.PUBLISHED),
    ]
    assert not ReleaseVersion.objects.filter(published_at__isnull=True).exists()
    release = ReleaseVersion.objects.get(version="1.0.1")
    assert sorted(release.artifacts.values_list("type", flat=True)) == sorted(ArtifactType.values)
    chart = HelmChart.objects.get(chart_version="1.0.1")
    assert chart.state == ChartState.INDEXED

    with pytest.raises(IntegrityError, match="published"), transaction.atomic():
        ReleaseArtifact.objects.create(
            release=release,
            type=ArtifactType.HELM_CHART,
            uri=chart.pinned_uri,
            checksum=chart.digest,
            size=1,
            helm_chart=chart,
        )


def test_seeded_charts_are_indexed_with_their_dependency_and_stay_immutable():
    _seed.indexed_charts(_seed.versions(2, major=3))

    assert list(HelmChart.objects.order_by("version_order").values_list("chart_version", "state")) == [
        ("3.0.0", ChartState.INDEXED),
        ("3.0.1", ChartState.INDEXED),
    ]
    assert ChartDependency.objects.filter(chart__chart_version="3.0.1", name="redis").count() == 1
    with pytest.raises(IntegrityError, match="indexed"), transaction.atomic():
        ChartDependency.objects.create(
            chart=HelmChart.objects.get(chart_version="3.0.0"), name="pg", version="1", repository="oci://r/c"
        )
