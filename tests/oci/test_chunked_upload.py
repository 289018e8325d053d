"""Chunked blob uploads (POST, PATCH with Content-Range, PUT ?digest=) against the real
docker-registry: forced, and as the fallback when a proxy refuses monolithic uploads (413)."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from releases.oci import BlobUploadError, RegistryClient, file_digest, sha256_digest
from releases.oci.client import CHUNKED_UPLOAD_HOSTS
from tests.fixtures.proxy import BreakingProxy, MonolithicRefusingProxy
from tests.fixtures.registry import RunningRegistry

pytestmark = pytest.mark.services

MiB = 1024 * 1024


def _write_random(path: Path, size: int) -> tuple[str, int]:
    with path.open("wb") as handle:
        for _ in range(size // MiB):
            handle.write(os.urandom(MiB))
        handle.write(os.urandom(size % MiB))
    return file_digest(path)


def _registry_digest(registry: RunningRegistry, repository: str, digest: str) -> tuple[str, int]:
    """Digest and size of the blob as docker-registry itself serves it."""
    hasher, size = hashlib.sha256(), 0
    with httpx.stream("GET", f"{registry.url}/v2/{repository}/blobs/{digest}", timeout=30) as response:
        assert response.status_code == 200
        for piece in response.iter_bytes():
            hasher.update(piece)
            size += len(piece)
    return "sha256:" + hasher.hexdigest(), size


def _record_requests(client: RegistryClient) -> list[tuple[str, str | None, str | None]]:
    """``(method, Content-Range, Content-Length)`` of every request the client sends."""
    sent: list[tuple[str, str | None, str | None]] = []
    hook = lambda request: sent.append(  # noqa: E731
        (request.method, request.headers.get("Content-Range"), request.headers.get("Content-Length"))
    )
    client._http.event_hooks["request"].append(hook)
    return sent


@pytest.fixture
def refusing_proxy(oci_registry: RunningRegistry) -> Iterator[MonolithicRefusingProxy]:
    proxy = MonolithicRefusingProxy(oci_registry.url)
    yield proxy
    proxy.close()
    CHUNKED_UPLOAD_HOSTS.discard(f"http://{proxy.host}")  # its port may serve another test later


def test_forced_chunked_upload_of_a_20_mib_blob_lands_intact_in_bounded_memory(
    oci_registry: RunningRegistry, tmp_path: Path
) -> None:
    # Given a 20 MiB file and a client forced to upload in 8 MiB chunks
    path = tmp_path / "layer"
    digest, size = _write_random(path, 20 * MiB)
    with RegistryClient(oci_registry.host, chunked_upload=True, upload_chunk_size=8 * MiB) as client:
        sent = _record_requests(client)
        # When it pushes the blob
        tracemalloc.start()
        try:
            uploaded = client.push_blob("chunked/forced", digest, size, path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Then the registry holds exactly the file, sent as three PATCHes and a closing PUT
    assert uploaded == size
    assert _registry_digest(oci_registry, "chunked/forced", digest) == (digest, size)
    assert sent == [
        ("HEAD", None, None),
        ("POST", None, "0"),
        ("PATCH", f"0-{8 * MiB - 1}", str(8 * MiB)),
        ("PATCH", f"{8 * MiB}-{16 * MiB - 1}", str(8 * MiB)),
        ("PATCH", f"{16 * MiB}-{20 * MiB - 1}", str(4 * MiB)),
        ("PUT", None, "0"),
    ]
    # and memory stayed far below one chunk, let alone the blob (it is read 1 MiB at a time)
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_monolithic_upload_still_streams_in_bounded_memory(oci_registry: RunningRegistry, tmp_path: Path) -> None:
    path = tmp_path / "layer"
    digest, size = _write_random(path, 20 * MiB)
    with RegistryClient(oci_registry.host) as client:
        assert not client.uses_chunked_upload
        sent = _record_requests(client)
        tracemalloc.start()
        try:
            assert client.push_blob("chunked/monolithic", digest, size, path) == size
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert [method for method, *_ in sent] == ["HEAD", "POST", "PUT"]
    assert _registry_digest(oci_registry, "chunked/monolithic", digest) == (digest, size)
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_refused_monolithic_upload_falls_back_to_chunks_and_is_remembered_per_registry(
    oci_registry: RunningRegistry, refusing_proxy: MonolithicRefusingProxy, tmp_path: Path
) -> None:
    # Given a registry behind a proxy that answers 413 to any PUT carrying a blob
    path = tmp_path / "layer"
    digest, size = _write_random(path, 3 * MiB + 5)
    # When a client that does not know it pushes a blob
    with RegistryClient(refusing_proxy.host, upload_chunk_size=MiB, retries=0) as client:
        assert client.push_blob("chunked/fallback", digest, size, path) == size
        assert client.uses_chunked_upload
    # Then it switched to a chunked upload in a new session, and the blob is intact
    assert [(method, status) for method, _, _, status in refusing_proxy.requests] == [
        ("HEAD", 404),
        ("POST", 202),
        ("PUT", 413),
        ("DELETE", 204),  # the refused session is cancelled
        ("POST", 202),
        ("PATCH", 202),
        ("PATCH", 202),
        ("PATCH", 202),
        ("PATCH", 202),
        ("PUT", 201),
    ]
    assert _registry_digest(oci_registry, "chunked/fallback", digest) == (digest, size)

    # When another client for the same registry pushes: chunks straight away, nothing refused
    second = b"second blob" * 50_000
    refusing_proxy.requests.clear()
    with RegistryClient(refusing_proxy.host, upload_chunk_size=MiB) as client:
        assert client.uses_chunked_upload
        assert client.push_blob("chunked/fallback", sha256_digest(second), len(second), second) == len(second)
    assert [method for method, *_ in refusing_proxy.requests] == ["HEAD", "POST", "PATCH", "PUT"]
    assert _registry_digest(oci_registry, "chunked/fallback", sha256_digest(second))[0] == sha256_digest(second)

    # The memory is per registry: the registry itself still gets monolithic uploads.
    with RegistryClient(oci_registry.host) as direct:
        assert not direct.uses_chunked_upload


class _Unseekable(io.RawIOBase):
    """A pipe-like source: it can be read once, never rewound."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_refused_monolithic_upload_of_an_unseekable_source_says_what_to_do(
    oci_registry: RunningRegistry, refusing_proxy: MonolithicRefusingProxy
) -> None:
    data = os.urandom(300_000)
    digest = sha256_digest(data)
    with RegistryClient(refusing_proxy.host, retries=0) as client:
        with pytest.raises(BlobUploadError) as excinfo:
            client.push_blob("chunked/pipe", digest, len(data), _Unseekable(data))  # type: ignore[arg-type]
        message = str(excinfo.value)
        assert "refused the monolithic upload" in message and "HTTP 413" in message
        assert "not seekable" in message and "chunked_upload=True" in message
        # Pushed again, the same kind of source goes up in chunks: read once, front to back.
        assert client.push_blob("chunked/pipe", digest, len(data), _Unseekable(data)) == len(data)  # type: ignore[arg-type]
    assert _registry_digest(oci_registry, "chunked/pipe", digest) == (digest, len(data))


def test_a_throttled_chunk_is_sent_again_in_the_same_session(oci_registry: RunningRegistry, tmp_path: Path) -> None:
    path = tmp_path / "layer"
    digest, size = _write_random(path, 3 * MiB)
    patches = 0

    def second_patch_throttled(method: str, _path: str, _served: int) -> str:
        nonlocal patches
        patches += method == "PATCH"
        return "429" if method == "PATCH" and patches == 2 else "forward"

    proxy = BreakingProxy(oci_registry.url, second_patch_throttled, retry_after="0")
    try:
        with RegistryClient(proxy.host, chunked_upload=True, upload_chunk_size=MiB, retries=0) as client:
            assert client.push_blob("chunked/throttled", digest, size, path) == size
    finally:
        proxy.close()
    assert [(method, status) for method, _, _, status in proxy.requests] == [
        ("HEAD", 404),
        ("POST", 202),
        ("PATCH", 202),
        ("PATCH", 429),
        ("PATCH", 202),  # the second chunk again, re-read from the file
        ("PATCH", 202),
        ("PUT", 201),
    ]
    assert _registry_digest(oci_registry, "chunked/throttled", digest) == (digest, size)


def test_empty_blob_in_chunked_mode_is_just_the_closing_put(oci_registry: RunningRegistry) -> None:
    with RegistryClient(oci_registry.host, chunked_upload=True) as client:
        sent = _record_requests(client)
        assert client.push_blob("chunked/empty", sha256_digest(b""), 0, b"") == 0
        assert client.blob_exists("chunked/empty", sha256_digest(b""))
    assert [method for method, *_ in sent][:3] == ["HEAD", "POST", "PUT"]
