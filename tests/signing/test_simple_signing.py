"""cosign's simple signing payload and ECDSA signatures, cross-checked with the openssl CLI."""

from __future__ import annotations

import json

import pytest

from releases.signing import (
    MalformedSignature,
    parse_simple_signing_payload,
    sign,
    simple_signing_payload,
    verify,
    verifying_key_id,
)
from releases.signing.keys import key_id
from tests.signing.conftest import KeyPair, OpenSSL

DIGEST = "sha256:" + "ab" * 32


def test_payload_has_cosigns_layout_in_deterministic_bytes() -> None:
    payload = simple_signing_payload("registry.example.com/team/app", DIGEST)

    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"registry.example.com/team/app"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    assert simple_signing_payload("registry.example.com/team/app", DIGEST) == payload
    claim = parse_simple_signing_payload(payload)
    assert (claim.docker_reference, claim.manifest_digest, claim.optional) == (
        "registry.example.com/team/app",
        DIGEST,
        None,
    )


def test_payload_carries_optional_annotations() -> None:
    payload = simple_signing_payload("r/app", DIGEST, {"version": "1.2.3"})

    assert json.loads(payload)["optional"] == {"version": "1.2.3"}
    assert parse_simple_signing_payload(payload).optional == {"version": "1.2.3"}


@pytest.mark.parametrize(("reference", "digest"), [("", DIGEST), ("r/app@" + DIGEST, DIGEST), ("r/app", "sha256:zz")])
def test_payload_refuses_bad_reference_or_digest(reference: str, digest: str) -> None:
    with pytest.raises(ValueError):
        simple_signing_payload(reference, digest)


def test_a_payload_of_another_kind_is_refused() -> None:
    with pytest.raises(MalformedSignature, match="critical.type"):
        parse_simple_signing_payload(
            b'{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"x"},"type":"other"}}'
        )
    with pytest.raises(MalformedSignature, match="not a cosign simple signing payload"):
        parse_simple_signing_payload(b"[]")


def test_our_signature_verifies_with_openssl_and_fails_with_another_key(
    openssl: OpenSSL, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    payload = simple_signing_payload("registry.example.com/team/app", DIGEST)

    signature = sign(key_pair.private_key, payload)

    assert openssl.verify(key_pair.public_path, payload, signature)
    assert not openssl.verify(other_key_pair.public_path, payload, signature)
    assert not openssl.verify(key_pair.public_path, payload + b" ", signature)


def test_openssl_signature_over_our_payload_is_accepted(
    openssl: OpenSSL, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    payload = simple_signing_payload("registry.example.com/team/app", DIGEST)

    signature = openssl.sign(key_pair.private_path, payload)

    assert verify([key_pair.public_pem], payload, signature)
    assert not verify([other_key_pair.public_pem], payload, signature)
    assert not verify([key_pair.public_pem], payload.replace(b"team", b"evil"), signature)


def test_any_trusted_key_verifies_so_keys_can_rotate(key_pair: KeyPair, other_key_pair: KeyPair) -> None:
    payload = simple_signing_payload("r/app", DIGEST)
    old_signature = sign(key_pair.private_key, payload)

    trusted = [other_key_pair.public_pem, key_pair.private_key.public_key()]

    assert verify(trusted, payload, old_signature)
    assert verifying_key_id(trusted, payload, old_signature) == key_id(key_pair.public_pem)
    assert not verify([other_key_pair.public_pem], payload, old_signature)
    assert not verify([], payload, old_signature)


def test_the_same_key_signing_the_same_payload_gives_the_same_signature(key_pair: KeyPair) -> None:
    payload = simple_signing_payload("r/app", DIGEST)

    assert sign(key_pair.private_key, payload) == sign(key_pair.private_key, payload)


@pytest.mark.parametrize("signature", ["", "not base64!", "AAAA"])
def test_malformed_signatures_do_not_verify(key_pair: KeyPair, signature: str) -> None:
    assert not verify([key_pair.public_pem], b"payload", signature)
