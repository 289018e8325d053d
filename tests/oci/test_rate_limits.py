"""Rate limiting: 429 (and 503 with Retry-After) makes the client wait what the registry asks,
within bounds, then retry; past the bounds it raises RegistryUnavailable at once.

The proxies answer 429/503 themselves and forward everything else to the real docker-registry,
so every successful answer comes from the registry, and the blobs are checked there.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from releases.oci import ManifestInvalid, RegistryClient, RegistryUnavailable, build_manifest, sha256_digest
from releases.oci.manifest import Descriptor
from releases.oci.media_types import OCI_CONFIG, OCI_LAYER_TAR_GZIP, OCI_MANIFEST
from tests.fixtures.proxy import BreakingProxy, RateLimitingProxy
from tests.fixtures.registry import RunningRegistry

pytestmark = pytest.mark.services


def _blob_file(tmp_path: Path, size: int) -> tuple[Path, str]:
    path = tmp_path / "layer"
    path.write_bytes(os.urandom(size))
    return path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _registry_digest(registry: RunningRegistry, repository: str, digest: str) -> str:
    """The digest of the blob as the registry serves it (straight from docker-registry)."""
    hasher = hashlib.sha256()
    with httpx.stream("GET", f"{registry.url}/v2/{repository}/blobs/{digest}", timeout=30) as response:
        assert response.status_code == 200
        for piece in response.iter_bytes():
            hasher.update(piece)
    return "sha256:" + hasher.hexdigest()


def _gaps_after_throttling(proxy: BreakingProxy) -> list[float]:
    """Seconds between each throttled request and the next request the proxy received."""
    return [
        proxy.arrived[index + 1] - proxy.arrived[index]
        for index, (_, _, action, _) in enumerate(proxy.requests[:-1])
        if action != "forward"
    ]


def test_push_completes_after_three_429s_and_waits_at_least_what_was_asked(
    oci_registry: RunningRegistry, tmp_path: Path
) -> None:
    # Given a registry that answers 429 (Retry-After: 1) to the first three requests
    path, digest = _blob_file(tmp_path, 2 * 1024 * 1024 + 3)
    proxy = RateLimitingProxy(oci_registry.url, limit_first=3, retry_after="1")
    try:
        # When a blob is pushed (retries=0: only rate limiting may retry anything)
        with RegistryClient(proxy.host, retries=0) as client:
            started = time.monotonic()
            uploaded = client.push_blob("ratelimit/push", digest, path.stat().st_size, path)
            elapsed = time.monotonic() - started
    finally:
        proxy.close()
    # Then it completed, the registry holds the file's bytes, and each wait was at least 1 s
    assert uploaded == path.stat().st_size
    assert _registry_digest(oci_registry, "ratelimit/push", digest) == digest
    assert proxy.throttled == 3
    gaps = _gaps_after_throttling(proxy)
    assert len(gaps) == 3 and min(gaps) >= 1.0, gaps
    assert elapsed >= 3.0
    assert [(method, status) for method, _, _, status in proxy.requests[3:]] == [
        ("HEAD", 404),
        ("POST", 202),
        ("PUT", 201),
    ]


def _kind(method: str, path: str) -> tuple[str, str]:
    """``("HEAD", "blobs")``, ``("POST", "uploads")``, ``("PUT", "manifests")``, ``("GET", "tags")``..."""
    return method, path.split("?")[0].split("/")[-2]


def test_every_kind_of_request_is_retried_after_429_with_an_http_date(oci_registry: RunningRegistry) -> None:
    # Given a registry that answers 429 to the first request of each kind (blob HEAD, upload
    # POST, blob PUT, manifest PUT, HEAD and GET, tag list); the first Retry-After is an
    # HTTP-date 1 to 2 s ahead (whole seconds), the others "0"
    seen: set[tuple[str, str]] = set()

    def first_of_each_kind(method: str, path: str, _served: int) -> str:
        if _kind(method, path) in seen:
            return "forward"
        proxy.retry_after = formatdate(time.time() + 2, usegmt=True) if not seen else "0"
        seen.add(_kind(method, path))
        return "429"

    proxy = BreakingProxy(oci_registry.url, first_of_each_kind)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = b"layer bytes" * 100
    try:
        with RegistryClient(proxy.host, retries=0, max_retry_after=5) as client:
            for blob in (config, layer):
                client.push_blob("ratelimit/kinds", sha256_digest(blob), len(blob), blob)
            manifest = build_manifest(
                Descriptor(OCI_CONFIG, sha256_digest(config), len(config)),
                [Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(layer), len(layer))],
            )
            digest = client.put_manifest("ratelimit/kinds", "1.0.0", manifest, OCI_MANIFEST)
            head = client.head_manifest("ratelimit/kinds", "1.0.0")
            body, _, _ = client.get_manifest("ratelimit/kinds", "1.0.0")
            tags = client.list_tags("ratelimit/kinds")
    finally:
        proxy.close()
    assert head is not None and head.digest == digest and body == manifest and tags == ["1.0.0"]
    throttled = [_kind(method, path) for method, path, action, _ in proxy.requests if action == "429"]
    assert throttled == [
        ("HEAD", "blobs"),
        ("POST", "uploads"),
        ("PUT", "uploads"),
        ("PUT", "manifests"),
        ("HEAD", "manifests"),
        ("GET", "manifests"),
        ("GET", "tags"),
    ]
    # Each throttled request was sent again, and answered by the registry.
    assert [status for *_, status in proxy.requests].count(429) == 7
    assert _gaps_after_throttling(proxy)[0] >= 0.9  # the HTTP-date was at least ~1 s ahead


def test_retry_after_above_the_ceiling_raises_unavailable_at_once_naming_the_wait(
    oci_registry: RunningRegistry,
) -> None:
    proxy = RateLimitingProxy(oci_registry.url, limit_first=100, retry_after="120")
    sleeps: list[float] = []
    try:
        with RegistryClient(proxy.host, max_retry_after=60, sleep=sleeps.append) as client:
            started = time.monotonic()
            with pytest.raises(RegistryUnavailable) as excinfo:
                client.push_blob("ratelimit/ceiling", sha256_digest(b"x"), 1, b"x")
            elapsed = time.monotonic() - started
    finally:
        proxy.close()
    message = str(excinfo.value)
    assert f"registry {proxy.host} is rate limiting (HTTP 429)" in message
    assert "asks to wait 120 s" in message and "max_retry_after" in message and "retry later" in message
    assert excinfo.value.retry_after == 120 and excinfo.value.status_code == 429
    assert elapsed < 1.0 and sleeps == []
    assert len(proxy.requests) == 1  # no retry: the Celery task retries later


def test_rate_limiting_that_never_ends_gives_up_after_rate_limit_retries(oci_registry: RunningRegistry) -> None:
    proxy = RateLimitingProxy(oci_registry.url, limit_first=100, retry_after="0")
    try:
        with (
            RegistryClient(proxy.host, rate_limit_retries=2) as client,
            pytest.raises(RegistryUnavailable, match=r"still rate limiting \(HTTP 429.*after 2 waits"),
        ):
            client.list_tags("ratelimit/never")
    finally:
        proxy.close()
    assert len(proxy.requests) == 3


def test_429_without_retry_after_backs_off_like_a_5xx(oci_registry: RunningRegistry) -> None:
    proxy = RateLimitingProxy(oci_registry.url, limit_first=2, retry_after="")
    sleeps: list[float] = []
    try:
        with RegistryClient(proxy.host, retries=0, backoff=0.01, sleep=sleeps.append) as client:
            assert client.list_tags("ratelimit/no-header") == []
    finally:
        proxy.close()
    assert [status for *_, status in proxy.requests] == [429, 429, 404]
    assert len(sleeps) == 2 and all(0 < pause <= 0.02 for pause in sleeps)


def test_503_with_retry_after_is_waited_then_the_same_request_is_sent_again(
    oci_registry: RunningRegistry, tmp_path: Path
) -> None:
    path, digest = _blob_file(tmp_path, 300_000)
    answered: set[str] = set()

    def first_head_and_put(method: str, _path: str, _served: int) -> str:
        if method in ("HEAD", "PUT") and method not in answered:
            answered.add(method)
            return "503-retry-after"
        return "forward"

    proxy = BreakingProxy(oci_registry.url, first_head_and_put, retry_after="1")
    try:
        with RegistryClient(proxy.host, retries=0) as client:
            assert client.push_blob("ratelimit/503", digest, 300_000, path) == 300_000
    finally:
        proxy.close()
    # The blob PUT is sent again in the same upload session (no second POST), from the start.
    assert [(method, status) for method, _, _, status in proxy.requests] == [
        ("HEAD", 503),
        ("HEAD", 404),
        ("POST", 202),
        ("PUT", 503),
        ("PUT", 201),
    ]
    assert min(_gaps_after_throttling(proxy)) >= 1.0
    assert _registry_digest(oci_registry, "ratelimit/503", digest) == digest


def test_other_4xx_are_still_never_retried_behind_a_rate_limiter(oci_registry: RunningRegistry) -> None:
    proxy = RateLimitingProxy(oci_registry.url, limit_first=1, retry_after="0")
    try:
        client = RegistryClient(proxy.host, retries=3)
        with client, pytest.raises(ManifestInvalid):
            client.put_manifest("ratelimit/bad", "1", b'{"schemaVersion": 2}', OCI_MANIFEST)
    finally:
        proxy.close()
    assert [(method, status) for method, _, _, status in proxy.requests] == [("PUT", 429), ("PUT", 400)]


def test_one_429_pauses_every_thread_sharing_the_client(oci_registry: RunningRegistry) -> None:
    # Given four threads listing tags through one client, and a registry that answers the very
    # first request 429 (Retry-After: 1) and everything else normally
    proxy = RateLimitingProxy(oci_registry.url, limit_first=1, retry_after="1")
    try:
        with RegistryClient(proxy.host, retries=0) as client, ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: client.list_tags(f"ratelimit/t{n % 4}"), range(40)))
    finally:
        proxy.close()
    # Then once that answer arrived no thread sent anything until the second was over: the
    # requests arriving meanwhile were already on their way when it was answered.
    throttled_at = proxy.arrived[0]
    during_pause = [arrived - throttled_at for arrived in proxy.arrived if 0.2 < arrived - throttled_at < 0.95]
    assert during_pause == []
    assert len(proxy.requests) == 41 and proxy.throttled == 1
    assert max(proxy.arrived) - throttled_at >= 1.0
