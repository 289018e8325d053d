"""Retries: 5xx and connection errors are retried with backoff, 4xx never.

The flaky proxy sits in front of the real registry and answers 503 to its first N requests, then
forwards everything, so the successful attempt is served by docker-registry itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from releases.oci import ManifestInvalid, RegistryClient, RegistryUnavailable, sha256_digest
from releases.oci.media_types import OCI_MANIFEST
from tests.fixtures.registry import RunningRegistry
from tests.fixtures.services import free_port

pytestmark = pytest.mark.services

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class FlakyProxy:
    """Forwards to ``upstream`` after answering ``fail_first`` requests with HTTP 503."""

    def __init__(self, upstream: str, fail_first: int) -> None:
        self.upstream = upstream
        self.fail_first = fail_first
        self.requests: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=10)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    failing = len(proxy.requests) < proxy.fail_first
                    status = 503 if failing else 0
                    proxy.requests.append((self.command, self.path, status))
                if failing:
                    payload = b'{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = proxy._http.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body or None
                )
                with proxy._lock:
                    proxy.requests[-1] = (self.command, self.path, upstream.status_code)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                announced = upstream.headers.get("Content-Length", str(len(upstream.content)))
                self.send_header("Content-Length", announced)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(upstream.content)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients closing keep-alive connections are not errors here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()


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
    assert [status for _, _, status in flaky_proxy.requests] == [503, 503, 404]


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
    methods = [(method, status) for method, _, status in proxy.requests]
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
    assert [(method, status) for method, _, status in proxy.requests] == [("PUT", 400)]
