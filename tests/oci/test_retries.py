"""Retries: 5xx and connection errors are retried with backoff, 4xx never.

The flaky proxy sits in front of the real registry and answers 503 to its first N requests, then
forwards everything, so the successful attempt is served by docker-registry itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from releases.oci import ManifestInvalid, RegistryClient, RegistryUnavailable, sha256_digest
from releases.oci.media_types import OCI_MANIFEST
from releases.sandbox.registry import RunningRegistry, free_port
from tests.fixtures.proxy import FlakyProxy

pytestmark = pytest.mark.services


@pytest.fixture
def flaky_proxy(oci_registry: RunningRegistry) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(oci_registry.url, fail_first=2)
    yield proxy
    proxy.close()


def test_down_registry_raises_unavailable_after_all_attempts() -> None:
    port = free_port()  # nothing listens there
    sleeps: list[float] = []
    client = RegistryClient(f"127.0.0.1:{port}", retries=3, backoff=0.01, sleep=sleeps.append)
    with client, pytest.raises(RegistryUnavailable) as excinfo:
        client.blob_exists("t/x", "sha256:" + "0" * 64)
    assert sleeps == [0.01, 0.02, 0.04]  # 4 attempts, exponential backoff
    message = str(excinfo.value)
    assert f"registry 127.0.0.1:{port} is unavailable" in message
    assert "gave up after 4 attempts" in message
    assert "running and reachable" in message
    assert isinstance(excinfo.value.__cause__, httpx.ConnectError)


def test_5xx_is_retried_then_succeeds(flaky_proxy: FlakyProxy, oci_registry: RunningRegistry) -> None:
    sleeps: list[float] = []
    with RegistryClient(flaky_proxy.host, retries=3, backoff=0.01, sleep=sleeps.append) as client:
        assert client.list_tags("t/never-pushed") == []
    assert sleeps == [0.01, 0.02]
    assert [status for *_, status in flaky_proxy.requests] == [503, 503, 404]


def test_5xx_exhausting_retries_raises_unavailable(oci_registry: RunningRegistry) -> None:
    proxy = FlakyProxy(oci_registry.url, fail_first=100)
    sleeps: list[float] = []
    try:
        client = RegistryClient(proxy.host, retries=2, backoff=0.01, sleep=sleeps.append)
        with (
            client,
            pytest.raises(RegistryUnavailable, match=r"HTTP 503: UNAVAILABLE: maintenance.*3 attempts"),
        ):
            client.list_tags("t/x")
    finally:
        proxy.close()
    assert len(proxy.requests) == 3


def test_blob_upload_is_restarted_after_5xx(oci_registry: RunningRegistry) -> None:
    data = b"retried upload" * 1000
    digest = sha256_digest(data)
    # The first PUT (the blob body) gets a 503: the client must start a new upload session.
    proxy = FlakyProxy(oci_registry.url, fail_first=0)
    sleeps: list[float] = []
    try:
        with RegistryClient(proxy.host, retries=3, backoff=0.01, sleep=sleeps.append) as client:
            original = client._send_once

            def fail_once_then_pass(*args: object, **kwargs: object) -> httpx.Response:
                if args[0] == "PUT" and not sleeps:
                    proxy.fail_first = len(proxy.requests) + 1  # this PUT gets a 503
                return original(*args, **kwargs)  # type: ignore[arg-type]

            client._send_once = fail_once_then_pass  # type: ignore[method-assign]
            assert client.push_blob("t/retry-upload", digest, len(data), data) == len(data)
            assert client.blob_exists("t/retry-upload", digest)
    finally:
        proxy.close()
    methods = [(method, status) for method, _, _, status in proxy.requests]
    assert methods[:5] == [("HEAD", 404), ("POST", 202), ("PUT", 503), ("POST", 202), ("PUT", 201)]
    assert sleeps == [0.01]


def test_4xx_is_not_retried(oci_registry: RunningRegistry) -> None:
    proxy = FlakyProxy(oci_registry.url, fail_first=0)
    sleeps: list[float] = []
    try:
        client = RegistryClient(proxy.host, retries=3, backoff=0.01, sleep=sleeps.append)
        with client, pytest.raises(ManifestInvalid):
            client.put_manifest("t/x", "1", b'{"schemaVersion": 2}', OCI_MANIFEST)
    finally:
        proxy.close()
    assert sleeps == []
    assert [(method, status) for method, _, _, status in proxy.requests] == [("PUT", 400)]
