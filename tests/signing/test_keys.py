"""Loading, generating and fingerprinting ECDSA P-256 keys, checked against openssl's own keys."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from releases.signing import (
    KeyDecryptionError,
    UnsupportedKey,
    encrypt_cosign_private_key,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign,
    verify,
)
from tests.signing.conftest import KeyPair, OpenSSL


def _pkcs8(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_generated_key_pair_loads_and_its_halves_match() -> None:
    private_pem, public_pem = generate_key_pair()

    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    key = load_private_key(private_pem)
    assert isinstance(key.curve, ec.SECP256R1)
    assert public_key_pem(key) == public_pem
    assert key_id(key) == key_id(public_pem)


def test_password_protected_key_needs_its_password() -> None:
    private_pem, public_pem = generate_key_pair(password="correct horse")

    assert private_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert public_key_pem(load_private_key(private_pem, "correct horse")) == public_pem
    with pytest.raises(KeyDecryptionError, match="give its password"):
        load_private_key(private_pem)
    with pytest.raises(KeyDecryptionError, match="password for the private key is wrong"):
        load_private_key(private_pem, "battery staple")


def test_keys_made_by_openssl_load(openssl: OpenSSL, tmp_path: Path) -> None:
    result = openssl.run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem")
    assert result.returncode == 0, result.stderr
    encrypted = openssl.run("pkcs8", "-topk8", "-in", "k.pem", "-out", "k.enc.pem", "-passout", "pass:s3cret")
    assert encrypted.returncode == 0, encrypted.stderr
    sec1 = openssl.run("ec", "-in", "k.pem", "-out", "k.sec1.pem")
    assert sec1.returncode == 0, sec1.stderr

    plain = load_private_key((openssl.workdir / "k.pem").read_bytes())
    assert key_id(load_private_key((openssl.workdir / "k.enc.pem").read_bytes(), b"s3cret")) == key_id(plain)
    assert key_id(load_private_key((openssl.workdir / "k.sec1.pem").read_bytes())) == key_id(plain)


def test_key_id_is_the_sha256_of_the_der_public_key_as_openssl_writes_it(openssl: OpenSSL, key_pair: KeyPair) -> None:
    der = openssl.run("pkey", "-pubin", "-in", str(key_pair.public_path), "-outform", "DER")
    assert der.returncode == 0, der.stderr

    assert key_id(key_pair.public_pem) == hashlib.sha256(der.stdout).hexdigest()


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (ec.generate_private_key(ec.SECP384R1()), "on curve secp384r1, not P-256"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "not an ECDSA key"),
        (ed25519.Ed25519PrivateKey.generate(), "not an ECDSA key"),
    ],
    ids=["p384", "rsa", "ed25519"],
)
def test_keys_other_than_p256_are_refused_with_what_to_use_instead(key: object, words: str) -> None:
    with pytest.raises(UnsupportedKey, match=words) as excinfo:
        load_private_key(_pkcs8(key))
    assert "ec_paramgen_curve:P-256" in str(excinfo.value)
    public = key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(UnsupportedKey, match=words):
        load_public_key(public)


def test_text_that_is_not_a_pem_key_is_refused() -> None:
    with pytest.raises(UnsupportedKey, match="not PEM"):
        load_private_key(b"ssh-ed25519 AAAA...")
    with pytest.raises(UnsupportedKey, match="BEGIN PUBLIC KEY"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_cosign_encrypted_key_round_trips_and_refuses_a_wrong_password(key_pair: KeyPair) -> None:
    cosign_pem = encrypt_cosign_private_key(key_pair.private_key, "cosign-pass")

    assert cosign_pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in cosign_pem.splitlines())
    loaded = load_private_key(cosign_pem, "cosign-pass")
    assert key_id(loaded) == key_id(key_pair.public_pem)
    assert verify([key_pair.public_pem], b"payload", sign(loaded, b"payload"))
    with pytest.raises(KeyDecryptionError, match="password for the cosign private key is wrong"):
        load_private_key(cosign_pem, "not-it")
    with pytest.raises(KeyDecryptionError, match="COSIGN_PASSWORD"):
        load_private_key(cosign_pem)


def test_cosign_key_with_other_scrypt_parameters_is_refused(key_pair: KeyPair) -> None:
    cosign_pem = encrypt_cosign_private_key(key_pair.private_key, "pw")
    body = b"".join(cosign_pem.splitlines()[1:-1])
    document = json.loads(base64.b64decode(body))
    document["kdf"]["params"]["N"] = 1 << 24  # 16 GiB of scrypt memory: a denial of service
    crafted = (
        b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"
        + base64.b64encode(json.dumps(document).encode())
        + b"\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n"
    )

    with pytest.raises(UnsupportedKey, match="only N=32768, r=8, p=1"):
        load_private_key(crafted, "pw")


def test_openssl_reads_the_public_key_we_write(openssl: OpenSSL, key_pair: KeyPair) -> None:
    result = subprocess.run(
        ["openssl", "pkey", "-pubin", "-noout", "-text"], input=key_pair.public_pem, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert b"NIST CURVE: P-256" in result.stdout or b"prime256v1" in result.stdout
