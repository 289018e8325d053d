"""SLSA provenance attestations stored in a real registry as cosign stores them (``.att``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from releases.oci import RegistryClient, canonical_json, sha256_digest
from releases.oci.media_types import OCI_MANIFEST
from releases.signing import (
    DSSE_MEDIA_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SLSA_PROVENANCE_V1,
    Envelope,
    VerificationStatus,
    attach_attestation,
    attest_image,
    attestation_tag,
    in_toto_statement,
    key_id,
    pae,
    read_attestations,
    sign_envelope,
    slsa_provenance,
    verify_image_attestations,
)
from tests.signing.conftest import KeyPair, OpenSSL, PushedImage

pytestmark = pytest.mark.services

STARTED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _provenance() -> dict[str, Any]:
    return slsa_provenance(
        builder_id="https://releases.example.com/builder/v1",
        build_type="https://releases.example.com/build/docker@v1",
        source_repository="https://ci:secret@github.com/acme/app.git",
        commit_sha="89abcdef0123456789abcdef0123456789abcdef",
        version="2.0.0",
        build_args={"VERSION": "2.0.0"},
        base_image="docker.io/library/debian:12",
        base_image_digest="sha256:" + "ef" * 32,
        started_on=STARTED,
        finished_on=STARTED + timedelta(minutes=2),
    )


def _attest(client: RegistryClient, image: PushedImage, key: KeyPair, predicate: dict[str, Any] | None = None):
    return attest_image(
        client,
        image.repository,
        image.digest,
        key.private_key,
        subject_name=image.reference,
        predicate_type=SLSA_PROVENANCE_V1,
        predicate=predicate or _provenance(),
    )


def _att_manifest(client: RegistryClient, image: PushedImage) -> dict[str, Any]:
    body, _, _ = client.get_manifest(image.repository, attestation_tag(image.digest))
    return json.loads(body)


def test_attestation_is_stored_as_cosign_does_and_verifies_with_openssl(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, openssl: OpenSSL
) -> None:
    result = _attest(registry_client, pushed_image, key_pair)

    assert result.added and result.layers == 1
    manifest = _att_manifest(registry_client, pushed_image)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["subject"]["digest"] == pushed_image.digest
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == DSSE_MEDIA_TYPE
    assert layer["annotations"][PREDICATE_TYPE_ANNOTATION] == SLSA_PROVENANCE_V1
    (stored,) = read_attestations(registry_client, pushed_image.repository, pushed_image.digest) or []
    envelope = stored.envelope
    assert sha256_digest(envelope.to_bytes()) == layer["digest"]
    assert envelope.payload_type == IN_TOTO_PAYLOAD_TYPE
    statement = json.loads(envelope.payload)
    assert statement["subject"] == [
        {"name": pushed_image.reference, "digest": {"sha256": pushed_image.digest.split(":")[1]}}
    ]
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["source"]["repository"] == (
        "https://github.com/acme/app.git"
    )
    (signature,) = envelope.signatures
    assert signature.keyid == key_id(key_pair.public_pem)
    assert openssl.verify(key_pair.public_path, pae(IN_TOTO_PAYLOAD_TYPE, envelope.payload), signature.sig)
    verdict = verify_image_attestations(
        registry_client,
        pushed_image.repository,
        pushed_image.digest,
        [key_pair.public_pem],
        predicate_type=SLSA_PROVENANCE_V1,
    )
    assert verdict.status is VerificationStatus.OK, verdict.detail


def test_attesting_twice_adds_one_layer_and_a_second_key_appends(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    first = _attest(registry_client, pushed_image, key_pair)

    again = _attest(registry_client, pushed_image, key_pair)
    rotated = _attest(registry_client, pushed_image, other_key_pair)

    assert not again.added and again.manifest_digest == first.manifest_digest
    assert rotated.added and rotated.layers == 2
    assert len(_att_manifest(registry_client, pushed_image)["layers"]) == 2
    only_new_key = verify_image_attestations(
        registry_client, pushed_image.repository, pushed_image.digest, [other_key_pair.public_pem]
    )
    assert only_new_key.ok and only_new_key.key_ids == (key_id(other_key_pair.public_pem),)
    assert "1 other attestation(s) not verified" in only_new_key.detail


def test_an_envelope_the_same_key_signed_with_another_nonce_is_not_added_again(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, openssl: OpenSSL
) -> None:
    statement = in_toto_statement(pushed_image.reference, pushed_image.digest, SLSA_PROVENANCE_V1, _provenance())
    payload = canonical_json(statement)
    by_openssl = Envelope.from_bytes(
        canonical_json(
            {
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "payload": sign_envelope(key_pair.private_key, payload).to_json()["payload"],
                "signatures": [
                    {"keyid": "", "sig": openssl.sign(key_pair.private_path, pae(IN_TOTO_PAYLOAD_TYPE, payload))}
                ],
            }
        )
    )
    attach_attestation(registry_client, pushed_image.repository, pushed_image.digest, by_openssl)

    again = _attest(registry_client, pushed_image, key_pair)

    assert not again.added
    assert len(_att_manifest(registry_client, pushed_image)["layers"]) == 1


def test_a_tampered_statement_is_invalid(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    _attest(registry_client, pushed_image, key_pair)
    manifest = _att_manifest(registry_client, pushed_image)
    (stored,) = read_attestations(registry_client, pushed_image.repository, pushed_image.digest) or []
    forged_payload = stored.envelope.payload.replace(b"2.0.0", b"9.9.9")
    forged = Envelope(stored.envelope.payload_type, forged_payload, stored.envelope.signatures).to_bytes()
    registry_client.push_blob(pushed_image.repository, sha256_digest(forged), len(forged), forged)
    manifest["layers"][0].update(digest=sha256_digest(forged), size=len(forged))
    registry_client.put_manifest(
        pushed_image.repository, attestation_tag(pushed_image.digest), canonical_json(manifest), OCI_MANIFEST
    )

    result = verify_image_attestations(
        registry_client, pushed_image.repository, pushed_image.digest, [key_pair.public_pem]
    )

    assert result.status is VerificationStatus.INVALID
    assert "not signed by a trusted key" in result.detail


def test_an_unsigned_annotation_cannot_relabel_a_predicate(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    attest_image(
        registry_client,
        pushed_image.repository,
        pushed_image.digest,
        key_pair.private_key,
        subject_name=pushed_image.reference,
        predicate_type="https://example.com/harmless/v1",
        predicate={"note": "anything"},
    )
    manifest = _att_manifest(registry_client, pushed_image)
    manifest["layers"][0]["annotations"][PREDICATE_TYPE_ANNOTATION] = SLSA_PROVENANCE_V1
    registry_client.put_manifest(
        pushed_image.repository, attestation_tag(pushed_image.digest), canonical_json(manifest), OCI_MANIFEST
    )

    result = verify_image_attestations(
        registry_client,
        pushed_image.repository,
        pushed_image.digest,
        [key_pair.public_pem],
        predicate_type=SLSA_PROVENANCE_V1,
    )

    assert result.status is VerificationStatus.INVALID
    assert "the signed statement says 'https://example.com/harmless/v1'" in result.detail


def test_missing_attestations_and_missing_predicate_types(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    trusted = [key_pair.public_pem]
    none_yet = verify_image_attestations(registry_client, pushed_image.repository, pushed_image.digest, trusted)
    assert none_yet.status is VerificationStatus.MISSING
    _attest(registry_client, pushed_image, key_pair)

    other_type = verify_image_attestations(
        registry_client,
        pushed_image.repository,
        pushed_image.digest,
        trusted,
        predicate_type="https://spdx.dev/Document",
    )

    assert other_type.status is VerificationStatus.MISSING
    assert other_type.detail.endswith("holds no attestation of type https://spdx.dev/Document")


def test_an_attestation_about_another_image_is_refused(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    statement = in_toto_statement(pushed_image.reference, "sha256:" + "33" * 32, SLSA_PROVENANCE_V1, {})
    envelope = sign_envelope(key_pair.private_key, canonical_json(statement))

    with pytest.raises(ValueError, match="subjects do not include"):
        attach_attestation(registry_client, pushed_image.repository, pushed_image.ref, envelope)
