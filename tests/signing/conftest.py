"""Fixtures for the signing tests: key pairs on disk, the real openssl CLI, the real registry."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from releases.oci import Descriptor, ManifestRef, RegistryClient, build_manifest, canonical_json, sha256_digest
from releases.oci.media_types import OCI_CONFIG, OCI_LAYER_TAR_GZIP, OCI_MANIFEST
from releases.signing import generate_key_pair, load_private_key
from tests.fixtures.registry import RunningRegistry
from tests.fixtures.services import service_missing


@dataclass
class KeyPair:
    """A generated P-256 key pair, loaded and written to ``key.pem``/``pub.pem`` for openssl."""

    private_key: ec.EllipticCurvePrivateKey
    private_pem: bytes
    public_pem: bytes
    private_path: Path
    public_path: Path


class OpenSSL:
    """The ``openssl`` command line: what ``cosign verify --key`` computes, from a second implementation."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def run(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["openssl", *args], input=input, capture_output=True, cwd=self.workdir, timeout=60)

    def verify(self, public_path: Path, data: bytes, signature_b64: str) -> bool:
        """``openssl dgst -sha256 -verify pub.pem -signature sig.der data``."""
        name = uuid.uuid4().hex
        (self.workdir / f"{name}.der").write_bytes(base64.b64decode(signature_b64))
        (self.workdir / f"{name}.bin").write_bytes(data)
        result = self.run("dgst", "-sha256", "-verify", str(public_path), "-signature", f"{name}.der", f"{name}.bin")
        assert result.returncode in (0, 1), result.stderr.decode()
        return result.returncode == 0 and b"Verified OK" in result.stdout

    def sign(self, private_path: Path, data: bytes) -> str:
        """``openssl dgst -sha256 -sign key.pem``, base64-encoded as cosign stores signatures."""
        name = uuid.uuid4().hex
        (self.workdir / f"{name}.bin").write_bytes(data)
        result = self.run("dgst", "-sha256", "-sign", str(private_path), "-out", f"{name}.der", f"{name}.bin")
        assert result.returncode == 0, result.stderr.decode()
        return base64.b64encode((self.workdir / f"{name}.der").read_bytes()).decode()


def make_key_pair(directory: Path, name: str) -> KeyPair:
    private_pem, public_pem = generate_key_pair()
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    private_path.write_bytes(private_pem)
    public_path.write_bytes(public_pem)
    return KeyPair(load_private_key(private_pem), private_pem, public_pem, private_path, public_path)


@pytest.fixture
def openssl(tmp_path: Path) -> OpenSSL:
    if shutil.which("openssl") is None:
        service_missing("the openssl command line is not installed; run bin/setup (or apt-get install openssl)")
    workdir = tmp_path / "openssl"
    workdir.mkdir()
    return OpenSSL(workdir)


@pytest.fixture
def key_pair(tmp_path: Path) -> KeyPair:
    return make_key_pair(tmp_path, "release")


@pytest.fixture
def other_key_pair(tmp_path: Path) -> KeyPair:
    return make_key_pair(tmp_path, "rotated")


@pytest.fixture
def registry_client(oci_registry: RunningRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(oci_registry.host, retries=0) as client:
        yield client


@dataclass
class PushedImage:
    """A small image pushed to its own repository for one test."""

    repository: str
    ref: ManifestRef
    reference: str  # registry/repository, what a simple signing payload names

    @property
    def digest(self) -> str:
        return self.ref.digest


@pytest.fixture
def pushed_image(registry_client: RegistryClient, oci_registry: RunningRegistry) -> PushedImage:
    repository = f"signing/app-{uuid.uuid4().hex[:10]}"
    layer = repository.encode() * 64
    layer_descriptor = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(layer), len(layer))
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
    registry_client.push_blob(repository, layer_descriptor.digest, layer_descriptor.size, layer)
    registry_client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
    manifest = build_manifest(config_descriptor, [layer_descriptor])
    registry_client.put_manifest(repository, "1.0.0", manifest, OCI_MANIFEST)
    ref = registry_client.head_manifest(repository, "1.0.0")
    assert ref is not None and ref.digest == sha256_digest(manifest) and ref.size == len(manifest)
    return PushedImage(repository, ref, f"{oci_registry.host}/{repository}")
