"""Signatures stored in a real registry as cosign stores them, read back and verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from releases.oci import Descriptor, ManifestNotFound, RegistryClient, build_manifest, canonical_json, sha256_digest
from releases.oci.media_types import OCI_CONFIG, OCI_MANIFEST
from releases.signing import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    VerificationStatus,
    attach_signature,
    key_id,
    read_signatures,
    sign,
    sign_image,
    signature_tag,
    simple_signing_payload,
    verify_image_signatures,
)
from tests.fixtures.registry import RunningRegistry
from tests.signing.conftest import KeyPair, OpenSSL, PushedImage

pytestmark = pytest.mark.services


def _sig_manifest(client: RegistryClient, image: PushedImage) -> dict:
    body, media_type, _ = client.get_manifest(image.repository, signature_tag(image.digest))
    assert media_type == OCI_MANIFEST
    return json.loads(body)


def test_signature_tag_follows_cosigns_scheme() -> None:
    assert signature_tag("sha256:" + "0a" * 32) == "sha256-" + "0a" * 32 + ".sig"
    with pytest.raises(ValueError):
        signature_tag("latest")


def test_signing_stores_a_cosign_signature_manifest(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, openssl: OpenSSL
) -> None:
    result = sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )

    assert result.added and result.layers == 1
    manifest = _sig_manifest(registry_client, pushed_image)
    assert sha256_digest(canonical_json(manifest)) == result.manifest_digest
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert manifest["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": pushed_image.digest,
        "size": pushed_image.ref.size,
    }
    (layer,) = manifest["layers"]
    payload = simple_signing_payload(pushed_image.reference, pushed_image.digest)
    assert layer["mediaType"] == SIMPLE_SIGNING_MEDIA_TYPE
    assert layer["digest"] == sha256_digest(payload) and layer["size"] == len(payload)
    # what `cosign verify --key` checks: the stored signature over the stored payload
    (stored,) = read_signatures(registry_client, pushed_image.repository, pushed_image.digest) or []
    assert stored.payload == payload
    assert stored.signature == layer["annotations"][SIGNATURE_ANNOTATION]
    assert openssl.verify(key_pair.public_path, stored.payload, stored.signature)


def test_signing_twice_with_the_same_key_adds_one_layer(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    first = sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )

    second = sign_image(
        registry_client, pushed_image.repository, pushed_image.ref, key_pair.private_key, pushed_image.reference
    )

    assert not second.added
    assert second.manifest_digest == first.manifest_digest
    assert len(_sig_manifest(registry_client, pushed_image)["layers"]) == 1


def test_a_signature_the_same_key_made_with_another_nonce_is_not_added_again(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, openssl: OpenSSL
) -> None:
    payload = simple_signing_payload(pushed_image.reference, pushed_image.digest)
    attach_signature(
        registry_client,
        pushed_image.repository,
        pushed_image.digest,
        payload,
        openssl.sign(key_pair.private_path, payload),  # random nonce, like cosign's
    )

    again = sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )

    assert not again.added
    assert len(_sig_manifest(registry_client, pushed_image)["layers"]) == 1


def test_a_second_key_appends_a_second_layer_and_both_verify(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    first = sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )

    second = sign_image(
        registry_client,
        pushed_image.repository,
        pushed_image.digest,
        other_key_pair.private_key,
        pushed_image.reference,
    )

    assert second.added and second.layers == 2 and second.manifest_digest != first.manifest_digest
    layers = _sig_manifest(registry_client, pushed_image)["layers"]
    assert [layer["digest"] for layer in layers] == [layers[0]["digest"]] * 2  # same payload, two signatures
    assert layers[0]["annotations"] != layers[1]["annotations"]
    for keys in ([key_pair.public_pem], [other_key_pair.public_pem]):
        result = verify_image_signatures(registry_client, pushed_image.repository, pushed_image.digest, keys)
        assert result.status is VerificationStatus.OK, result.detail
        assert result.key_ids == (key_id(keys[0]),)
    both = verify_image_signatures(
        registry_client,
        pushed_image.repository,
        pushed_image.digest,
        [key_pair.public_pem, other_key_pair.public_pem],
        docker_reference=pushed_image.reference,
    )
    assert both.ok and set(both.key_ids) == {key_id(key_pair.public_pem), key_id(other_key_pair.public_pem)}


def test_existing_foreign_layers_are_kept_verbatim(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    payload = simple_signing_payload(pushed_image.reference, pushed_image.digest)
    signature = sign(other_key_pair.private_key, payload)
    attach_signature(registry_client, pushed_image.repository, pushed_image.digest, payload, signature)
    before = _sig_manifest(registry_client, pushed_image)["layers"][0]

    sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )

    assert _sig_manifest(registry_client, pushed_image)["layers"][0] == before


def test_verification_without_a_trusted_key_is_invalid(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )

    result = verify_image_signatures(
        registry_client, pushed_image.repository, pushed_image.digest, [other_key_pair.public_pem]
    )

    assert result.status is VerificationStatus.INVALID
    assert result.detail == "signature 1: not made by a trusted key over this payload"


def test_a_tampered_payload_is_invalid(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )
    manifest = _sig_manifest(registry_client, pushed_image)
    # someone swaps the payload for one naming another registry, keeping the signature annotation
    forged = simple_signing_payload("evil.example.com/team/app", pushed_image.digest)
    registry_client.push_blob(pushed_image.repository, sha256_digest(forged), len(forged), forged)
    manifest["layers"][0].update(digest=sha256_digest(forged), size=len(forged))
    registry_client.put_manifest(
        pushed_image.repository, signature_tag(pushed_image.digest), canonical_json(manifest), OCI_MANIFEST
    )

    result = verify_image_signatures(
        registry_client, pushed_image.repository, pushed_image.digest, [key_pair.public_pem]
    )

    assert result.status is VerificationStatus.INVALID
    assert "not made by a trusted key" in result.detail


def test_a_payload_blob_corrupted_in_storage_is_invalid(
    registry_client: RegistryClient,
    oci_registry: RunningRegistry,
    pushed_image: PushedImage,
    key_pair: KeyPair,
) -> None:
    sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )
    layer_digest = _sig_manifest(registry_client, pushed_image)["layers"][0]["digest"]
    hexdigest = layer_digest.split(":")[1]
    blob = Path(oci_registry.root, "docker/registry/v2/blobs/sha256", hexdigest[:2], hexdigest, "data")
    blob.write_bytes(blob.read_bytes().replace(b"signing/app", b"signing/APP"))

    result = verify_image_signatures(
        registry_client, pushed_image.repository, pushed_image.digest, [key_pair.public_pem]
    )

    assert result.status is VerificationStatus.INVALID
    assert "does not match its digest" in result.detail


def test_a_signature_for_another_digest_is_invalid(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    other_digest = "sha256:" + "11" * 32
    payload = simple_signing_payload(pushed_image.reference, other_digest)
    with pytest.raises(ValueError, match="payload signs"):
        attach_signature(
            registry_client, pushed_image.repository, pushed_image.ref, payload, sign(key_pair.private_key, payload)
        )


def test_unsigned_and_deleted_signatures_are_missing(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    trusted = [key_pair.public_pem]
    unsigned = verify_image_signatures(registry_client, pushed_image.repository, pushed_image.digest, trusted)
    assert unsigned.status is VerificationStatus.MISSING
    assert read_signatures(registry_client, pushed_image.repository, pushed_image.digest) is None
    signed = sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )
    assert verify_image_signatures(registry_client, pushed_image.repository, pushed_image.digest, trusted).ok

    assert registry_client.delete_manifest(pushed_image.repository, signed.manifest_digest)

    result = verify_image_signatures(registry_client, pushed_image.repository, pushed_image.digest, trusted)
    assert result.status is VerificationStatus.MISSING
    assert result.detail == (
        f"no signature: {pushed_image.repository}:{signature_tag(pushed_image.digest)} does not exist"
    )


def test_signing_a_tag_or_an_absent_manifest_is_refused(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    with pytest.raises(ValueError, match="not the tag"):
        sign_image(registry_client, pushed_image.repository, "1.0.0", key_pair.private_key, pushed_image.reference)
    with pytest.raises(ManifestNotFound, match="push the image before signing it"):
        sign_image(
            registry_client,
            pushed_image.repository,
            "sha256:" + "22" * 32,
            key_pair.private_key,
            pushed_image.reference,
        )


def test_a_signature_manifest_copied_from_another_image_is_invalid(
    registry_client: RegistryClient, pushed_image: PushedImage, key_pair: KeyPair
) -> None:
    sign_image(
        registry_client, pushed_image.repository, pushed_image.digest, key_pair.private_key, pushed_image.reference
    )
    manifest = _sig_manifest(registry_client, pushed_image)
    manifest["subject"]["digest"] = "sha256:" + "44" * 32
    registry_client.put_manifest(
        pushed_image.repository, signature_tag(pushed_image.digest), canonical_json(manifest), OCI_MANIFEST
    )

    result = verify_image_signatures(
        registry_client, pushed_image.repository, pushed_image.digest, [key_pair.public_pem]
    )

    assert result.status is VerificationStatus.INVALID
    assert "copied from another image" in result.detail


def test_signing_and_verifying_through_bearer_token_auth(
    token_registry: RunningRegistry, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    repository = "team/signed-app"
    with RegistryClient(token_registry.host, username="alice", password="s3cret") as writer:
        config = canonical_json({"architecture": "amd64", "os": "linux"})
        writer.push_blob(repository, sha256_digest(config), len(config), config)
        manifest = build_manifest(Descriptor(OCI_CONFIG, sha256_digest(config), len(config)), [])
        digest = writer.put_manifest(repository, "1.0.0", manifest, OCI_MANIFEST)
        sign_image(writer, repository, digest, key_pair.private_key, f"{token_registry.host}/{repository}")
        sign_image(writer, repository, digest, other_key_pair.private_key, f"{token_registry.host}/{repository}")

    # a pull-only account reads the payload blobs with its own scoped token
    with RegistryClient(token_registry.host, username="reader", password="r3ad") as reader:
        result = verify_image_signatures(reader, repository, digest, [key_pair.public_pem, other_key_pair.public_pem])

    assert result.ok, result.detail
    assert len(result.key_ids) == 2
