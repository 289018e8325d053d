"""cosign's "simple signing" payload, and ECDSA P-256 / SHA-256 signatures over payloads.

A signature made here is what ``cosign sign --key`` makes: an ASN.1 DER ECDSA signature over the
SHA-256 of the payload bytes, base64-encoded. So ``cosign verify --key cosign.pub`` and
``openssl dgst -sha256 -verify cosign.pub -signature sig.der payload`` both accept it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from releases.oci.manifest import canonical_json
from releases.oci.names import validate_digest
from releases.signing.errors import MalformedSignature
from releases.signing.keys import PublicKeyLike, key_id, load_public_key

SIMPLE_SIGNING_TYPE = "cosign container image signature"

# RFC 6979 nonces: the same key signing the same payload gives the same signature, so re-signing
# is recognisably a no-op. Verifiers cannot tell the difference from random nonces.
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


@dataclass(frozen=True)
class SimpleSigningPayload:
    """What a simple signing payload claims: the image reference and the manifest digest signed."""

    docker_reference: str
    manifest_digest: str
    optional: Mapping[str, Any] | None = None


def simple_signing_payload(
    docker_reference: str, manifest_digest: str, optional: Mapping[str, Any] | None = None
) -> bytes:
    """The payload cosign signs for an image, as deterministic JSON bytes.

    ``{"critical": {"identity": {"docker-reference": ...}, "image": {"docker-manifest-digest": ...},
    "type": "cosign container image signature"}, "optional": ...}`` with sorted keys and no
    whitespace: the byte layout cosign itself produces, so the same inputs always sign the same
    bytes. ``docker_reference`` is the repository (``registry/name``, no tag or digest), as cosign
    writes it. Refuses a malformed digest or an empty reference (``ValueError``).
    """
    validate_digest(manifest_digest)
    if not docker_reference or "@" in docker_reference:
        raise ValueError(f"docker_reference must be the repository (registry/name), got {docker_reference!r}")
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": SIMPLE_SIGNING_TYPE,
        },
        "optional": dict(optional) if optional else None,
    }
    return canonical_json(document)


def parse_simple_signing_payload(payload: bytes) -> SimpleSigningPayload:
    """Read a simple signing payload; refuses (:class:`MalformedSignature`) anything else."""
    try:
        document = json.loads(payload)
        critical = document["critical"]
        kind = critical["type"]
        reference = critical["identity"]["docker-reference"]
        digest = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedSignature(f"the payload is not a cosign simple signing payload: {exc!r}") from exc
    if kind != SIMPLE_SIGNING_TYPE:
        raise MalformedSignature(f"the payload's critical.type is {kind!r}, expected {SIMPLE_SIGNING_TYPE!r}")
    if not isinstance(reference, str) or not isinstance(digest, str):
        raise MalformedSignature("the payload's docker-reference and docker-manifest-digest must be strings")
    optional = document.get("optional")
    return SimpleSigningPayload(reference, digest, optional if isinstance(optional, dict) else None)


def sign(private_key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    """Base64 of the DER ECDSA signature over SHA-256(``payload``): cosign's signature encoding."""
    return base64.b64encode(private_key.sign(payload, _ECDSA_SHA256)).decode("ascii")


def decode_signature(signature_b64: str) -> bytes:
    """The DER bytes of a base64 signature; refuses (:class:`MalformedSignature`) bad base64."""
    try:
        return base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedSignature(f"the signature is not valid base64: {exc}") from exc


def verifying_key_id(public_keys: Iterable[PublicKeyLike], payload: bytes, signature_b64: str) -> str | None:
    """The :func:`~releases.signing.keys.key_id` of the first key in ``public_keys`` whose
    signature ``signature_b64`` is over ``payload``; ``None`` when none is (or it is malformed)."""
    try:
        signature = decode_signature(signature_b64)
    except MalformedSignature:
        return None
    for candidate in public_keys:
        public_key = load_public_key(candidate)
        try:
            public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return key_id(public_key)
    return None


def verify(public_keys: Iterable[PublicKeyLike], payload: bytes, signature_b64: str) -> bool:
    """True when one of the trusted ``public_keys`` signed ``payload`` (ECDSA P-256, SHA-256).

    Several keys are accepted so that a key can be rotated: signatures by the old key still verify
    while it is trusted. A malformed signature is simply not valid (``False``); a malformed or
    non-P-256 key is refused (:class:`~releases.signing.errors.UnsupportedKey`).
    """
    return verifying_key_id(public_keys, payload, signature_b64) is not None
