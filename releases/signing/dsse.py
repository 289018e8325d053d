"""DSSE (Dead Simple Signing Envelope) v1: the envelope cosign attestations are stored in.

The signature covers ``PAE(payloadType, payload)``, never the payload alone, so a signature made
for one payload type cannot be passed off as one for another::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

with ``LEN`` the byte length in ASCII decimal. Signatures are ECDSA P-256 / SHA-256 in DER, like
:func:`releases.signing.simple_signing.sign`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from releases.oci.manifest import canonical_json
from releases.signing.errors import MalformedSignature
from releases.signing.keys import PublicKeyLike, key_id
from releases.signing.simple_signing import sign, verifying_key_id

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: the exact bytes a DSSE signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class EnvelopeSignature:
    """One signature of an envelope: base64 DER in ``sig``, the signer's key id in ``keyid``."""

    sig: str
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the payload (raw bytes here, base64 on the wire), its type, signatures."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form: ``{"payload": b64, "payloadType": ..., "signatures": [{"keyid", "sig"}]}``."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": s.sig} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        """Deterministic JSON bytes of :meth:`to_json` (the blob stored in a registry)."""
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Read an envelope; refuses (:class:`MalformedSignature`) anything that is not one."""
        try:
            document = json.loads(data)
            payload = base64.b64decode(document["payload"], validate=True)
            payload_type = document["payloadType"]
            signatures = tuple(
                EnvelopeSignature(sig=str(entry["sig"]), keyid=str(entry.get("keyid") or ""))
                for entry in document.get("signatures") or ()
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise MalformedSignature(f"not a DSSE envelope: {exc!r}") from exc
        if not isinstance(payload_type, str):
            raise MalformedSignature("the DSSE envelope's payloadType must be a string")
        return cls(payload_type=payload_type, payload=payload, signatures=signatures)

    def pae(self) -> bytes:
        """The bytes this envelope's signatures cover."""
        return pae(self.payload_type, self.payload)


def sign_envelope(
    private_key: ec.EllipticCurvePrivateKey, payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE
) -> Envelope:
    """A DSSE envelope of ``payload`` signed by ``private_key`` (keyid: its key id)."""
    signature = EnvelopeSignature(sig=sign(private_key, pae(payload_type, payload)), keyid=key_id(private_key))
    return Envelope(payload_type=payload_type, payload=payload, signatures=(signature,))


def add_envelope_signature(envelope: Envelope, private_key: ec.EllipticCurvePrivateKey) -> Envelope:
    """``envelope`` with one more signature by ``private_key`` (unchanged if it already has one)."""
    if verify_envelope([private_key.public_key()], envelope):
        return envelope
    signature = EnvelopeSignature(sig=sign(private_key, envelope.pae()), keyid=key_id(private_key))
    return Envelope(envelope.payload_type, envelope.payload, (*envelope.signatures, signature))


def envelope_key_ids(public_keys: Iterable[PublicKeyLike], envelope: Envelope) -> list[str]:
    """Key ids of the trusted keys that signed ``envelope`` (over its PAE), each once.

    The ``keyid`` hint of a signature is not trusted: every signature is tried against every key,
    so an envelope with an empty or stale ``keyid`` (as cosign writes) still verifies.
    """
    keys = list(public_keys)
    message = envelope.pae()
    found: list[str] = []
    for signature in envelope.signatures:
        matched = verifying_key_id(keys, message, signature.sig)
        if matched is not None and matched not in found:
            found.append(matched)
    return found


def verify_envelope(public_keys: Iterable[PublicKeyLike], envelope: Envelope) -> bool:
    """True when at least one of the trusted ``public_keys`` signed ``envelope``."""
    return bool(envelope_key_ids(public_keys, envelope))
