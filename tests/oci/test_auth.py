"""Bearer-token and basic auth against real docker-registry instances.

The token server runs in a thread: it checks HTTP basic credentials and signs RS256 JWTs whose
``x5c`` header carries a self-signed certificate that the registry trusts (``rootcertbundle``).
It grants, of the requested scopes, exactly the actions the user is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import bcrypt
import pytest
from pytest import TempPathFactory

from releases.oci import (
    Descriptor,
    RegistryAuthError,
    RegistryClient,
    build_manifest,
    canonical_json,
    sha256_digest,
)
from releases.oci.media_types import OCI_CONFIG, OCI_LAYER_TAR_GZIP, OCI_MANIFEST
from releases.sandbox.registry import RunningRegistry
from tests.fixtures.registry import RegistryFactory
from tests.fixtures.token_auth import SERVICE, TokenServer

pytestmark = pytest.mark.services


def _push_image(client: RegistryClient, repository: str, marker: bytes) -> str:
    layer = marker * 100
    layer_descriptor = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(layer), len(layer))
    config = canonical_json({"architecture": "amd64", "os": "linux", "marker": marker.decode()})
    config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
    assert client.push_blob(repository, layer_descriptor.digest, layer_descriptor.size, layer) == len(layer)
    client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
    manifest = build_manifest(config_descriptor, [layer_descriptor])
    return client.put_manifest_immutable(repository, "1.0.0", manifest, OCI_MANIFEST).digest


def test_anonymous_request_is_challenged(token_registry: RunningRegistry) -> None:
    with RegistryClient(token_registry.host) as client, pytest.raises(RegistryAuthError) as excinfo:
        client.blob_exists("team/app", "sha256:" + "0" * 64)
    assert str(excinfo.value) == (
        f"{token_registry.host} requires authentication and no credentials are configured; "
        "set REGISTRY_USERNAME/REGISTRY_PASSWORD"
    )


def test_push_with_scoped_tokens(token_registry: RunningRegistry, token_server: TokenServer) -> None:
    token_server.requests.clear()
    with RegistryClient(token_registry.host, username="alice", password="s3cret") as client:
        digest = _push_image(client, "team/app", b"token auth")
        head = client.head_manifest("team/app", "1.0.0")
        assert head is not None and head.digest == digest
        # Cached per scope: a whole image push (HEADs, POSTs, PUTs, manifest) used one push token.
        push_requests = [r for r in token_server.requests if r["scopes"] == ["repository:team/app:pull,push"]]
        assert len(push_requests) == 1
        assert push_requests[0]["service"] == [SERVICE]
        granted = {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
        assert push_requests[0]["granted"] == [granted]
        body, media_type = _manifest_of(client, "team/app")
        assert client.put_manifest_immutable("team/app", "1.0.0", body, media_type).created is False
        assert len(client.list_tags("team/app")) == 1

        # Cross-repository mount: the token also covers pull on the source repository.
        layer = b"token auth" * 100
        token_server.requests.clear()
        digest = sha256_digest(layer)
        assert client.push_blob("team/other", digest, len(layer), layer, mount_from=["team/app"]) == 0
        assert client.blob_exists("team/other", sha256_digest(layer))
        scopes = [tuple(r["scopes"]) for r in token_server.requests]  # type: ignore[arg-type]
        assert ("repository:team/app:pull", "repository:team/other:pull,push") in scopes


def _manifest_of(client: RegistryClient, repository: str) -> tuple[bytes, str]:
    body, media_type, _ = client.get_manifest(repository, "1.0.0")
    return body, media_type


def test_wrong_password_is_a_clear_auth_error(token_registry: RunningRegistry) -> None:
    sleeps: list[float] = []
    client = RegistryClient(token_registry.host, username="alice", password="wrong", sleep=sleeps.append)
    with client, pytest.raises(RegistryAuthError) as excinfo:
        _push_image(client, "team/app", b"never")
    message = str(excinfo.value)
    assert message.startswith(f"credentials were refused for {token_registry.host}")
    assert "check REGISTRY_USERNAME/REGISTRY_PASSWORD" in message
    assert "s3cret" not in message and "wrong" not in message
    assert sleeps == []  # auth failures are not retried


def test_pull_only_account_cannot_push(token_registry: RunningRegistry) -> None:
    with RegistryClient(token_registry.host, username="alice", password="s3cret") as client:
        _push_image(client, "team/readable", b"readable")
    with RegistryClient(token_registry.host, username="reader", password="r3ad") as reader:
        assert reader.head_manifest("team/readable", "1.0.0") is not None
        data = os.urandom(100)
        with pytest.raises(RegistryAuthError, match="credentials were refused for .* while trying to"):
            reader.push_blob("team/readable", sha256_digest(data), 100, data)


@pytest.fixture(scope="module")
def basic_registry(registry_factory: RegistryFactory, tmp_path_factory: TempPathFactory) -> RunningRegistry:
    htpasswd: Path = tmp_path_factory.mktemp("htpasswd") / "htpasswd"
    hashed = bcrypt.hashpw(b"hunter2", bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"bob:{hashed}\n")
    auth = {"htpasswd": {"realm": "test", "path": str(htpasswd)}}
    return registry_factory({"auth": auth}, name="basic-registry")


def test_basic_auth(basic_registry: RunningRegistry) -> None:
    with RegistryClient(basic_registry.host, username="bob", password="hunter2") as client:
        digest = _push_image(client, "team/basic", b"basic auth")
        head = client.head_manifest("team/basic", "1.0.0")
        assert head is not None and head.digest == digest
    client = RegistryClient(basic_registry.host, username="bob", password="nope")
    with client, pytest.raises(RegistryAuthError, match="credentials were refused for"):
        client.head_manifest("team/basic", "1.0.0")
