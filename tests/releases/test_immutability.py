"""Published tags never change: not through the model, not through a bulk update, not by a second row."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from releases.choices import ChartState, ImageState
from releases.models import DockerImage, HelmChart, ImmutableTagError
from tests.fixtures.factories import digest_of, make_chart, make_image

pytestmark = pytest.mark.django_db


def snapshot(model, pk):
    return model.objects.filter(pk=pk).values().get()


@pytest.mark.parametrize(("field", "value"), [("digest", digest_of("other")), ("tag", "1.0.1")])
def test_available_image_digest_or_tag_cannot_change(field, value):
    image = make_image(state=ImageState.AVAILABLE)
    before = snapshot(DockerImage, image.pk)

    setattr(image, field, value)
    with pytest.raises(ImmutableTagError, match="published versions are immutable"):
        image.save()
    with pytest.raises(IntegrityError, match="published image tags are immutable"), transaction.atomic():
        DockerImage.objects.filter(pk=image.pk).update(**{field: value})

    assert snapshot(DockerImage, image.pk) == before


def test_available_image_cannot_be_deleted():
    image = make_image(state=ImageState.AVAILABLE)
    with pytest.raises(ImmutableTagError):
        image.delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        DockerImage.objects.filter(pk=image.pk).delete()
    assert DockerImage.objects.filter(pk=image.pk).exists()


def test_published_tag_cannot_be_created_again_with_another_digest():
    make_image(state=ImageState.AVAILABLE)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_image(state=ImageState.AVAILABLE, digest=digest_of("another build"))
    assert DockerImage.objects.count() == 1


def test_latest_alone_is_exempt():
    latest = make_image(tag="latest", state=ImageState.AVAILABLE)
    latest.digest = digest_of("newer release")
    latest.save()
    assert DockerImage.objects.get(pk=latest.pk).digest == digest_of("newer release")


def test_image_still_in_the_pipeline_may_record_its_digest():
    image = make_image(state=ImageState.PUSHING)
    DockerImage.objects.filter(pk=image.pk).update(digest=digest_of("pushed"))
    assert DockerImage.objects.get(pk=image.pk).digest == digest_of("pushed")


def test_indexed_chart_version_and_digest_cannot_change():
    make_image("threek8s-frontend", state=ImageState.AVAILABLE)
    make_image("threek8s-backend", state=ImageState.AVAILABLE)
    chart = make_chart(state=ChartState.INDEXED)
    before = snapshot(HelmChart, chart.pk)

    chart.digest = digest_of("repackaged")
    with pytest.raises(ImmutableTagError, match="chart version 1.0.0 is already published"):
        chart.save()
    with pytest.raises(IntegrityError, match="published chart versions are immutable"), transaction.atomic():
        HelmChart.objects.filter(pk=chart.pk).update(chart_version="1.0.1")

    assert snapshot(HelmChart, chart.pk) == before
