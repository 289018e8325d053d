"""RegistryClient against a real docker-registry (anonymous)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from releases.oci import (
    BlobUploadError,
    Descriptor,
    ManifestInvalid,
    ManifestNotFound,
    PlatformManifest,
    RegistryClient,
    TagConflict,
    build_index,
    build_manifest,
    canonical_json,
    sha256_digest,
)
from releases.oci.media_types import (
    HELM_CHART_CONTENT,
    HELM_CONFIG,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST,
)
from releases.sandbox.registry import RunningRegistry
from tests.fixtures.base_image import BaseImage, push_multiarch_base_image
from tests.fixtures.services import require_binary

pytestmark = pytest.mark.services


@pytest.fixture
def client(oci_registry: RunningRegistry) -> Iterator[RegistryClient]:
    sleeps: list[float] = []
    with RegistryClient(oci_registry.host, retries=2, backoff=0.01, sleep=sleeps.append) as registry_client:
        registry_client.sleeps = sleeps  # type: ignore[attr-defined]
        yield registry_client


def _blob(tmp_path: Path, size: int, name: str = "blob") -> tuple[Path, str]:
    path = tmp_path / name
    data = os.urandom(size)
    path.write_bytes(data)
    return path, sha256_digest(data)


def _image(client: RegistryClient, repository: str, marker: bytes) -> tuple[bytes, str]:
    """Push a one-layer image; return (manifest bytes, manifest digest) without tagging."""
    layer = gzip.compress(marker, mtime=0)
    layer_descriptor = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(layer), len(layer))
    client.push_blob(repository, layer_descriptor.digest, layer_descriptor.size, layer)
    rootfs = {"type": "layers", "diff_ids": []}
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": rootfs})
    config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
    client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
    manifest = build_manifest(config_descriptor, [layer_descriptor])
    return manifest, sha256_digest(manifest)


def test_push_blob_from_path_then_repush_uploads_nothing(client: RegistryClient, tmp_path: Path) -> None:
    path, digest = _blob(tmp_path, 3 * 1024 * 1024 + 17)  # several chunks, odd tail
    size = path.stat().st_size
    assert not client.blob_exists("t/blobs", digest)
    assert client.push_blob("t/blobs", digest, size, path) == size
    assert client.blob_exists("t/blobs", digest)
    assert client.push_blob("t/blobs", digest, size, path) == 0
    assert client.push_blob("t/blobs", digest, size, str(path)) == 0


def test_push_blob_from_file_object(client: RegistryClient, tmp_path: Path) -> None:
    path, digest = _blob(tmp_path, 100_000)
    with path.open("rb") as handle:
        assert client.push_blob("t/fileobj", digest, 100_000, handle) == 100_000
    assert client.blob_exists("t/fileobj", digest)


def test_push_blob_refuses_wrong_size_and_wrong_digest(client: RegistryClient, tmp_path: Path) -> None:
    path, digest = _blob(tmp_path, 1000)
    with pytest.raises(BlobUploadError, match="is 1000 bytes, expected 999"):
        client.push_blob("t/bad", digest, 999, path)
    wrong = sha256_digest(b"something else")
    with pytest.raises(BlobUploadError, match="DIGEST_INVALID") as excinfo:
        client.push_blob("t/bad", wrong, 1000, path)
    assert excinfo.value.status_code == 400
    assert client.sleeps == []  # type: ignore[attr-defined]  # 4xx: never retried
    assert not client.blob_exists("t/bad", wrong)


def test_cross_repository_mount(client: RegistryClient, tmp_path: Path) -> None:
    path, digest = _blob(tmp_path, 200_000)
    assert client.push_blob("t/mount-src", digest, 200_000, path) == 200_000
    assert not client.blob_exists("t/mount-dst", digest)
    sources = ["t/elsewhere", "t/mount-src"]
    uploaded = client.push_blob("t/mount-dst", digest, 200_000, path, mount_from=sources)
    assert uploaded == 0
    assert client.blob_exists("t/mount-dst", digest)


def test_mount_from_unknown_repo_falls_back_to_upload(client: RegistryClient, tmp_path: Path) -> None:
    path, digest = _blob(tmp_path, 5000)
    assert client.push_blob("t/mount-fallback", digest, 5000, path, mount_from=["t/nowhere"]) == 5000
    # A repository of another registry cannot be mounted from: plain upload.
    assert client.push_blob("t/mount-fallback2", digest, 5000, path, mount_from=["ghcr.io/org/x"]) == 5000


def test_manifest_and_index_push_head_get(client: RegistryClient) -> None:
    repository = "t/multiarch"
    manifest, manifest_digest = _image(client, repository, b"amd64 layer")
    assert client.put_manifest(repository, manifest_digest, manifest, OCI_MANIFEST) == manifest_digest
    index = build_index([PlatformManifest(manifest_digest, len(manifest), "linux", "amd64")])
    index_digest = client.put_manifest(repository, "1.0.0", index, OCI_INDEX)
    assert index_digest == sha256_digest(index)

    head = client.head_manifest(repository, "1.0.0")
    assert head is not None
    assert head.digest == index_digest
    assert head.media_type == OCI_INDEX
    assert head.size == len(index)
    by_digest = client.head_manifest(repository, manifest_digest)
    assert by_digest is not None and by_digest.media_type == OCI_MANIFEST

    body, media_type, digest = client.get_manifest(repository, "1.0.0")
    assert (body, media_type, digest) == (index, OCI_INDEX, index_digest)
    assert client.head_manifest(repository, "9.9.9") is None
    with pytest.raises(ManifestNotFound):
        client.get_manifest(repository, "9.9.9")


def test_manifest_referencing_missing_blob_is_invalid_and_not_retried(client: RegistryClient) -> None:
    config = Descriptor(OCI_CONFIG, sha256_digest(b"never pushed"), 12)
    manifest = build_manifest(config, [])
    with pytest.raises(ManifestInvalid, match="MANIFEST_BLOB_UNKNOWN") as excinfo:
        client.put_manifest("t/invalid", "1", manifest, OCI_MANIFEST)
    assert "refused to put manifest t/invalid:1: HTTP 400" in str(excinfo.value)
    assert client.sleeps == []  # type: ignore[attr-defined]


def test_put_manifest_refuses_inconsistent_input(client: RegistryClient) -> None:
    manifest, digest = _image(client, "t/refuse", b"x")
    with pytest.raises(ValueError, match="declares mediaType"):
        client.put_manifest("t/refuse", "1", manifest, OCI_INDEX)
    with pytest.raises(ValueError, match="not to the reference"):
        client.put_manifest("t/refuse", sha256_digest(b"other"), manifest, OCI_MANIFEST)


def test_helm_chart_manifest(client: RegistryClient) -> None:
    repository = "t/charts/app"
    chart = gzip.compress(b"fake chart tarball", mtime=0)
    config = canonical_json({"apiVersion": "v2", "name": "app", "version": "1.0.0"})
    chart_descriptor = Descriptor(HELM_CHART_CONTENT, sha256_digest(chart), len(chart))
    config_descriptor = Descriptor(HELM_CONFIG, sha256_digest(config), len(config))
    client.push_blob(repository, chart_descriptor.digest, chart_descriptor.size, chart)
    client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
    manifest = build_manifest(config_descriptor, [chart_descriptor])
    result = client.put_manifest_immutable(repository, "1.0.0", manifest, OCI_MANIFEST)
    assert result.created
    body, media_type, _ = client.get_manifest(repository, "1.0.0")
    assert json.loads(body)["config"]["mediaType"] == HELM_CONFIG
    assert media_type == OCI_MANIFEST


def test_put_manifest_immutable(client: RegistryClient) -> None:
    repository = "t/immutable"
    first, first_digest = _image(client, repository, b"first")
    second, second_digest = _image(client, repository, b"second")
    created = client.put_manifest_immutable(repository, "1.0.0", first, OCI_MANIFEST)
    assert (created.digest, created.created) == (first_digest, True)
    again = client.put_manifest_immutable(repository, "1.0.0", first, OCI_MANIFEST)
    assert (again.digest, again.created) == (first_digest, False)
    with pytest.raises(TagConflict) as excinfo:
        client.put_manifest_immutable(repository, "1.0.0", second, OCI_MANIFEST)
    expected = f"tag 1.0.0 already points to {first_digest}; published versions are immutable"
    assert str(excinfo.value) == expected
    assert excinfo.value.new_digest == second_digest
    head = client.head_manifest(repository, "1.0.0")
    assert head is not None and head.digest == first_digest
    assert client.head_manifest(repository, second_digest) is None  # nothing was written


def test_delete_manifest(client: RegistryClient) -> None:
    repository = "t/delete"
    manifest, digest = _image(client, repository, b"to delete")
    client.put_manifest(repository, "gone", manifest, OCI_MANIFEST)
    assert client.head_manifest(repository, "gone") is not None
    assert client.delete_manifest(repository, digest) is True
    assert client.head_manifest(repository, digest) is None
    assert client.head_manifest(repository, "gone") is None
    assert client.delete_manifest(repository, digest) is False
    with pytest.raises(ValueError):
        client.delete_manifest(repository, "gone")


def test_list_tags_with_pagination(client: RegistryClient) -> None:
    repository = "t/tags"
    manifest, _ = _image(client, repository, b"tags")
    tags = ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "latest"]
    for tag in tags:
        client.put_manifest(repository, tag, manifest, OCI_MANIFEST)
    assert sorted(client.list_tags(repository, page_size=2)) == tags
    assert sorted(client.list_tags(repository)) == tags
    assert client.list_tags("t/no-such-repo") == []


def test_connection_reuse(oci_registry: RunningRegistry) -> None:
    connections: list[object] = []

    class CountingTransport(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            connections.append(request.url)
            return super().handle_request(request)

    transport = CountingTransport()
    with RegistryClient(oci_registry.host, transport=transport) as registry_client:
        for _ in range(5):
            registry_client.head_manifest("t/none", "x")
        pool = transport._pool  # httpcore pool: one connection served all five requests
        assert len(pool.connections) == 1
    assert len(connections) == 5


def test_multiarch_base_image(oci_registry: RunningRegistry) -> None:
    with RegistryClient(oci_registry.host) as registry_client:
        image: BaseImage = push_multiarch_base_image(registry_client, "t/base", "1")
        assert push_multiarch_base_image(registry_client, "t/base", "1") == image  # deterministic
        body, media_type, digest = registry_client.get_manifest("t/base", "1")
        assert media_type == OCI_INDEX and digest == image.index_digest
        platforms = {
            "/".join(filter(None, (p["os"], p["architecture"], p.get("variant"))))
            for p in (m["platform"] for m in json.loads(body)["manifests"])
        }
        assert platforms == {"linux/amd64", "linux/arm64/v8"}
        manifest, _, _ = registry_client.get_manifest("t/base", image.manifest_digests["linux/arm64/v8"])
        config_digest = json.loads(manifest)["config"]["digest"]
        response = registry_client._http.get(f"{registry_client.base_url}/v2/t/base/blobs/{config_digest}")
        config = json.loads(response.content)
        assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")
        assert config["config"]["Env"][0].startswith("PATH=")
        layer = registry_client._http.get(f"{registry_client.base_url}/v2/t/base/blobs/{image.layer_digest}")
        raw = gzip.decompress(layer.content)
        # the shared layer first, then the platform's busybox
        assert config["rootfs"]["diff_ids"][0] == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert len(config["rootfs"]["diff_ids"]) == 2
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            assert tar.extractfile("etc/base-release").read() == b"tiny-base 1\n"  # type: ignore[union-attr]
        busybox_digest = json.loads(manifest)["layers"][1]["digest"]
        busybox = registry_client._http.get(f"{registry_client.base_url}/v2/t/base/blobs/{busybox_digest}")
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(busybox.content))) as tar:
            assert tar.getmember("bin/sh").linkname == "busybox"
            elf = tar.extractfile("bin/busybox").read(20)  # type: ignore[union-attr]
        assert elf[:4] == b"\x7fELF" and elf[18] == 0xB7  # e_machine EM_AARCH64
    assert image.reference == f"{oci_registry.host}/t/base:1"


def test_base_image_is_readable_by_skopeo(multiarch_base_image: BaseImage) -> None:
    skopeo = require_binary("skopeo")
    for arch in ("amd64", "arm64"):
        result = subprocess.run(
            [
                skopeo,
                "inspect",
                "--tls-verify=false",
                "--override-arch",
                arch,
                f"docker://{multiarch_base_image}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["Architecture"] == arch
        assert json.loads(result.stdout)["Digest"] == multiarch_base_image.index_digest
