"""Which signature tags an audit run reads: existence from one tag listing per repository (a real
docker-registry), content in turn, every digest once in any ``every`` consecutive runs; and in
which batches: those of the rows' primary-key ranges."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from releases.audit import TagListing, content_due
from releases.choices import ChartState, ImageState
from releases.oci import RegistryClient
from releases.pipelines.audit import plan_shards, signed_manifests
from releases.sandbox.registry import RunningRegistry
from tests.audit.helpers import push_chart
from tests.fixtures.factories import make_chart, make_image

DIGESTS = ["sha256:" + hashlib.sha256(str(number).encode()).hexdigest() for number in range(600)]


@pytest.mark.parametrize("every", [2, 3, 4, 7])
def test_each_digest_is_due_once_in_any_window_of_every_runs(every: int) -> None:
    for first_run in (1, 5, 1000):
        window = range(first_run, first_run + every)
        due_counts = {digest: sum(content_due(digest, run, every) for run in window) for digest in DIGESTS}
        assert set(due_counts.values()) == {1}


def test_the_runs_share_the_reading_evenly() -> None:
    per_run = [sum(content_due(digest, run, 4) for digest in DIGESTS) for run in range(4)]
    assert sum(per_run) == len(DIGESTS)
    assert min(per_run) >= len(DIGESTS) / 4 * 0.7  # no run reads everything


def test_every_run_reads_everything_when_every_is_one() -> None:
    assert all(content_due(digest, run, 1) for digest in DIGESTS[:50] for run in range(3))


@pytest.mark.services
def test_listing_says_listed_not_listed_and_unknown(oci_registry: RunningRegistry) -> None:
    repository = f"turns-{uuid.uuid4().hex[:8]}/chart"
    with RegistryClient(oci_registry.host, retries=1, backoff=0.01) as client:
        push_chart(client, repository, "1.0.0", "1.0.0")
        listing = TagListing(client)
        assert listing.listed(repository, "1.0.0") is True
        assert listing.listed(repository, "sha256-" + "0" * 64 + ".sig") is False
        assert listing.listed(f"turns-{uuid.uuid4().hex[:8]}/never-pushed", "1.0.0") is False
    with RegistryClient("127.0.0.1:9", retries=0, backoff=0.01) as closed:
        assert TagListing(closed).listed(repository, "1.0.0") is None


@pytest.mark.django_db
def test_signatures_are_checked_in_batches_of_the_rows_ranges(settings) -> None:
    # Given five signed published images and three signed indexed charts on one host, batches of 2
    settings.SIGNING_PRIVATE_KEY = None
    settings.TRUSTED_PUBLIC_KEYS = []
    signed = {"signed_with": "k" * 64}
    images = [make_image("app", f"1.{n}.0", ImageState.AVAILABLE, **signed) for n in range(5)]
    charts = [make_chart(f"2.{n}.0", ChartState.INDEXED, **signed) for n in range(3)]
    make_image("app", "9.0.0", ImageState.AVAILABLE)  # unsigned, without a key configured: not checked

    # When the run is planned
    shards = plan_shards(batch_size=2)

    # Then each range of rows has a signatures batch of its own, after the version tags
    kinds = [shard.kind for shard in shards]
    assert kinds == ["image"] * 3 + ["chart"] * 2 + ["latest"] + ["image-signatures"] * 3 + ["chart-signatures"] * 2
    ranges = {(s.kind, s.first, s.last) for s in shards}
    assert {(f"{kind}-signatures", first, last) for kind, first, last in ranges if kind in ("image", "chart")} == {
        r for r in ranges if r[0].endswith("-signatures")
    }
    # And the batches together name every signed manifest once, each in the batch of its row
    seen = [(m.owner, m.pk) for s in shards if s.kind.endswith("-signatures") for m in signed_manifests(s)]
    assert sorted(seen) == sorted([("image", i.pk) for i in images] + [("chart", c.pk) for c in charts])
