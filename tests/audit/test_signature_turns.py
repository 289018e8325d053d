"""Which signature tags an audit run reads: existence from one tag listing per repository (a real
docker-registry), content in turn, every digest once in any ``every`` consecutive runs."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from releases.audit import TagListing, content_due
from releases.oci import RegistryClient
from releases.sandbox.registry import RunningRegistry
from tests.audit.helpers import push_chart

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
