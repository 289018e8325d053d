"""Signing building blocks for published images (plain Python, no Django imports).

What cosign does with a key pair, without the cosign binary, so that ``cosign verify --key`` and
``cosign verify-attestation --key`` accept what we publish and we can check what others signed:

- :mod:`~releases.signing.keys`: ECDSA P-256 keys (PKCS#8, SEC1, cosign's encrypted format);
- :mod:`~releases.signing.simple_signing`: cosign's payload, ECDSA/SHA-256 sign and verify;
- :mod:`~releases.signing.dsse` and :mod:`~releases.signing.intoto`: DSSE envelopes, in-toto
  statements and SLSA provenance v1 predicates;
- :mod:`~releases.signing.storage`: the ``sha256-<hex>.sig`` / ``.att`` manifests in a registry,
  written idempotently and verified into ok / missing / invalid verdicts.
"""

from releases.signing.blobs import MAX_BLOB_BYTES, BlobReader
from releases.signing.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    EnvelopeSignature,
    add_envelope_signature,
    envelope_key_ids,
    pae,
    sign_envelope,
    verify_envelope,
)
from releases.signing.errors import KeyDecryptionError, MalformedSignature, SigningError, UnsupportedKey
from releases.signing.intoto import (
    SLSA_PROVENANCE_V1,
    STATEMENT_TYPE,
    digest_set,
    in_toto_statement,
    parse_statement,
    slsa_provenance,
    statement_names_digest,
)
from releases.signing.keys import (
    PublicKeyLike,
    encrypt_cosign_private_key,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
    public_key_pem,
)
from releases.signing.simple_signing import (
    SIMPLE_SIGNING_TYPE,
    SimpleSigningPayload,
    decode_signature,
    parse_simple_signing_payload,
    sign,
    simple_signing_payload,
    verify,
    verifying_key_id,
)
from releases.signing.storage import (
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    AttachResult,
    AttestationLayer,
    SignatureLayer,
    attach_attestation,
    attach_signature,
    attest_image,
    attestation_tag,
    read_attestations,
    read_signatures,
    resolve_subject,
    sign_image,
    signature_tag,
)
from releases.signing.verification import (
    VerificationResult,
    VerificationStatus,
    verify_image_attestations,
    verify_image_signatures,
)

__all__ = [
    "DSSE_MEDIA_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "MAX_BLOB_BYTES",
    "PREDICATE_TYPE_ANNOTATION",
    "SIGNATURE_ANNOTATION",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "SIMPLE_SIGNING_TYPE",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_TYPE",
    "AttachResult",
    "AttestationLayer",
    "BlobReader",
    "Envelope",
    "EnvelopeSignature",
    "KeyDecryptionError",
    "MalformedSignature",
    "PublicKeyLike",
    "SignatureLayer",
    "SigningError",
    "SimpleSigningPayload",
    "UnsupportedKey",
    "VerificationResult",
    "VerificationStatus",
    "add_envelope_signature",
    "attach_attestation",
    "attach_signature",
    "attest_image",
    "attestation_tag",
    "decode_signature",
    "digest_set",
    "encrypt_cosign_private_key",
    "envelope_key_ids",
    "generate_key_pair",
    "in_toto_statement",
    "key_id",
    "load_private_key",
    "load_public_key",
    "pae",
    "parse_simple_signing_payload",
    "parse_statement",
    "public_key_pem",
    "read_attestations",
    "read_signatures",
    "resolve_subject",
    "sign",
    "sign_envelope",
    "sign_image",
    "signature_tag",
    "simple_signing_payload",
    "slsa_provenance",
    "statement_names_digest",
    "verify",
    "verify_envelope",
    "verify_image_attestations",
    "verify_image_signatures",
    "verifying_key_id",
]
