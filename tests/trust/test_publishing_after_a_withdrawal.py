"""Publishing after a withdrawal: a new version below the withdrawn one becomes ``latest`` (it is the
newest not withdrawn), and a withdrawn version never becomes ``latest`` again by publishing (a
redelivered task). Against the real docker-registry."""

from __future__ import annotations

import uuid

import pytest

from releases.models import DockerImage
from releases.oci import RegistryClient
from releases.pipelines.images import move_latest
from releases.trust.withdrawal import withdraw_release
from tests.trust.published import IMAGES, Shelf

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def shelf(settings, oci_registry):
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/p{uuid.uuid4().hex[:10]}"
    with RegistryClient(oci_registry.host) as client:
        yield Shelf(client, settings.REGISTRY_NAMESPACE)


def test_a_hotfix_below_a_withdrawn_version_becomes_latest_and_the_withdrawn_one_never_does(shelf):
    # Given 1.0.0 and 1.1.0 published, 1.1.0 withdrawn (latest put back at 1.0.0 by hand here)
    shelf.publish("1.0.0")
    shelf.publish("1.1.0")
    withdraw_release("1.1.0", reason="bad", actor="alice")
    for name in IMAGES:
        repository = shelf.repository(name)
        shelf.client.put_manifest(repository, "latest", *shelf.client.get_manifest(repository, "1.0.0")[:2])

    # When a redelivered task of 1.1.0 tries to move latest, and then 1.0.1 is published
    redelivered = [move_latest(image) for image in DockerImage.objects.filter(tag="1.1.0")]
    after_redelivery = {name: shelf.live(name, "latest") for name in IMAGES}
    shelf.publish("1.0.1", move_latest=False)
    hotfix = [move_latest(image) for image in DockerImage.objects.filter(tag="1.0.1")]

    # Then the withdrawn version was not made latest, the hotfix was
    assert redelivered == [False, False]
    assert after_redelivery == {name: shelf.digests[(name, "1.0.0")] for name in IMAGES}
    assert hotfix == [True, True]
    assert {name: shelf.live(name, "latest") for name in IMAGES} == {
        name: shelf.digests[(name, "1.0.1")] for name in IMAGES
    }
