"""An audit behind a registry that rate-limits: the whole run slows down, no tag is reported
``unreachable`` for it, unless the registry asks for more than the client will wait."""

from __future__ import annotations

import time
import uuid

import pytest

from releases.audit import ExpectedTag, TagStatus, audit_tags
from releases.oci import RegistryClient
from tests.audit.helpers import PLATFORMS, push_image
from tests.fixtures.proxy import RateLimitingProxy
from tests.fixtures.registry import RunningRegistry

pytestmark = pytest.mark.services

ENGINES = ["fast", "httpx"]


def _tags(oci_registry: RunningRegistry, count: int) -> list[ExpectedTag]:
    with RegistryClient(oci_registry.host) as direct:
        image = push_image(direct, f"audit-{uuid.uuid4().hex[:8]}/throttled", "1.0.0")
    return [ExpectedTag(str(n), image.repository, "1.0.0", image.digest, "image", PLATFORMS) for n in range(count)]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_audit_behind_a_rate_limiter_slows_down_together_and_reports_no_tag_unreachable(
    oci_registry: RunningRegistry, engine: str
) -> None:
    # Given 200 published tags and a registry that answers its first 12 requests 429 (Retry-After: 1)
    expected = _tags(oci_registry, 200)
    proxy = RateLimitingProxy(oci_registry.url, limit_first=12, retry_after="1")
    try:
        # When they are audited 8 at a time (no retries for failures: only rate limiting waits)
        with RegistryClient(proxy.host, retries=0) as client:
            started = time.monotonic()
            results = list(audit_tags(client, expected, concurrency=8, engine=engine))  # type: ignore[arg-type]
            elapsed = time.monotonic() - started
    finally:
        proxy.close()
    # Then every tag is ok: none unreachable, none missing
    assert sorted(int(result.expected.key) for result in results) == list(range(200))
    assert {result.status for result in results} == {TagStatus.OK}
    assert proxy.throttled == 12
    # and after the last 429 nothing was sent for the second it asked, though the probes whose
    # HEADs were answered 200 had tags left to check: all probes waited together (requests
    # arriving just after it were already on their way)
    last_429 = max(
        at for at, (_, _, action, _) in zip(proxy.arrived, proxy.requests, strict=True) if action != "forward"
    )
    assert [at - last_429 for at in proxy.arrived if 0.1 < at - last_429 < 0.95] == []
    assert elapsed >= 2.0  # 8 concurrent HEADs throttled, then 4 more: at least two pauses


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wait_above_the_ceiling_makes_tags_unreachable_at_once_naming_the_wait(
    oci_registry: RunningRegistry, engine: str
) -> None:
    expected = _tags(oci_registry, 4)
    proxy = RateLimitingProxy(oci_registry.url, limit_first=1000, retry_after="300")
    try:
        with RegistryClient(proxy.host, max_retry_after=60) as client:
            started = time.monotonic()
            results = list(audit_tags(client, expected, concurrency=2, engine=engine))  # type: ignore[arg-type]
            elapsed = time.monotonic() - started
    finally:
        proxy.close()
    assert {result.status for result in results} == {TagStatus.UNREACHABLE}
    for result in results:
        assert f"registry {proxy.host} is rate limiting (HTTP 429)" in result.detail
        assert "asks to wait 300 s" in result.detail
    assert elapsed < 2.0
    assert len(proxy.requests) == 4  # one HEAD per tag, none retried
