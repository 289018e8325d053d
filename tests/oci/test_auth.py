"""Bearer-token and basic auth against real docker-registry instances.

The token server runs in a thread: it checks HTTP basic credentials and signs RS256 JWTs whose
``x5c`` header carries a self-signed certificate that the registry trusts (``rootcertbundle``).
It grants, of the requested scopes, exactly the actions the user is allowed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
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
from tests.fixtures.registry import RegistryFactory, RunningRegistry

pytestmark = pytest.mark.services

SERVICE = "test-registry"
ISSUER = "test-token-issuer"
#: user -> (password, actions the user may have on any repository)
USERS = {"alice": ("s3cret", {"pull", "push", "delete"}), "reader": ("r3ad", {"pull"})}


@dataclass
class TokenServer:
    """A minimal distribution token server (``GET /token?service=...&scope=...``)."""

    key: rsa.RSAPrivateKey
    cert_der: bytes
    requests: list[dict[str, object]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def issue(self, user: str, scopes: list[str]) -> tuple[str, list[dict[str, object]]]:
        allowed = USERS[user][1]
        access: list[dict[str, object]] = []
        for scope in scopes:
            resource, _, actions = scope.rpartition(":")
            kind, _, name = resource.partition(":")
            granted = [action for action in actions.split(",") if action in allowed]
            if kind == "repository" and granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(dt.datetime.now(dt.UTC).timestamp())
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        headers = {"x5c": [base64.b64encode(self.cert_der).decode()]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers), access

    def start(self) -> None:
        token_server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                query = parse_qs(urlsplit(self.path).query)
                scopes = query.get("scope", [])
                user = self._user()
                record: dict[str, object] = {"user": user, "scopes": scopes, "service": query.get("service")}
                token_server.requests.append(record)
                if user is None:
                    self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                    return
                token, access = token_server.issue(user, scopes)
                record["granted"] = access
                issued_at = dt.datetime.now(dt.UTC).isoformat()
                self._send(200, {"token": token, "expires_in": 300, "issued_at": issued_at})

            def _user(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                username, _, password = base64.b64decode(header[6:]).decode().partition(":")
                expected = USERS.get(username)
                return username if expected and expected[0] == password else None

            def _send(self, status: int, document: dict[str, object]) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def token_server() -> Iterator[TokenServer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _self_signed(key)
    server = TokenServer(key=key, cert_der=cert.public_bytes(serialization.Encoding.DER))
    server.cert_pem = cert.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_registry(
    token_server: TokenServer, registry_factory: RegistryFactory, tmp_path_factory: TempPathFactory
) -> RunningRegistry:
    bundle = tmp_path_factory.mktemp("token-auth") / "root.pem"
    bundle.write_bytes(token_server.cert_pem)  # type: ignore[attr-defined]
    auth = {
        "token": {
            "realm": token_server.realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(bundle),
        }
    }
    return registry_factory({"auth": auth}, name="token-registry")


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
