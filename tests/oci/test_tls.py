"""TLS verification of registry connections: every client shares one verifying context (building
one costs about 20 ms of CPU), and sharing it verifies exactly as before: a registry whose
certificate no trusted CA signed is refused, one the operator's CA signed is reached."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from releases.oci import RegistryClient, RegistryUnavailable
from releases.oci.session import default_tls_context
from tests.fixtures.certificates import self_signed
from tests.fixtures.network import serving


class _V2(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    address = x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))])
    cert = self_signed(key, "registry test CA", [(address, False)])
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def https_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server answering ``GET /v2/``; yields its address and its certificate."""
    cert_file, key_file = _certificate(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _V2)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server) as host:
        yield f"https://{host}", cert_file


def test_clients_share_one_verifying_context() -> None:
    with RegistryClient("ghcr.io") as first, RegistryClient("quay.io") as second:
        shared = first.connection_settings().verify
        assert shared is second.connection_settings().verify is default_tls_context()
    assert isinstance(shared, ssl.SSLContext)
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname


def test_the_shared_context_refuses_an_untrusted_certificate(https_registry: tuple[str, Path]) -> None:
    address, _ = https_registry
    for _ in range(2):  # the second client reuses the context the first one used
        with RegistryClient(address, retries=0) as client, pytest.raises(RegistryUnavailable, match="CERTIFICATE"):
            client.check()


def test_a_context_of_the_operator_still_reaches_the_registry(https_registry: tuple[str, Path]) -> None:
    address, cert_file = https_registry
    trusting = ssl.create_default_context(cafile=str(cert_file))
    with RegistryClient(address, retries=0, verify=trusting) as client:
        client.check()
        assert client.connection_settings().verify is trusting
    with RegistryClient(address, retries=0, verify=False) as client:
        client.check()
