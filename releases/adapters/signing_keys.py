"""The configured signing key and the keys trusted to verify, as the rest of the service sees them.

``registry.settings`` reads and checks the key files at start (``SIGNING_KEY``,
``SIGNING_KEY_PASSWORD``, ``TRUSTED_SIGNING_KEYS``); this module turns them into what the
pipelines, the audit, the API and the admin need: the signer (or ``None``: publishing unsigned),
the trusted public keys with their ids, and the PEMs to publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from releases.signing import key_id, load_public_key, public_key_pem


@dataclass(frozen=True)
class PublishedKey:
    """A public key people verify our releases with: its id (hex SHA-256 of the DER
    SubjectPublicKeyInfo, as in DSSE ``keyid``), its PEM, and whether it signs new releases."""

    key_id: str
    pem: str
    signing: bool


def signing_key() -> ec.EllipticCurvePrivateKey | None:
    """The key new releases are signed with; ``None`` when ``SIGNING_KEY`` is not set."""
    return settings.SIGNING_PRIVATE_KEY


def signing_key_id() -> str:
    """The id of the signing key, or ``""`` when releases are published unsigned."""
    key = signing_key()
    return key_id(key) if key is not None else ""


def published_keys() -> list[PublishedKey]:
    """The signing key's public half first, then ``TRUSTED_SIGNING_KEYS``, each key once."""
    keys: list[PublishedKey] = []
    signer = signing_key()
    if signer is not None:
        keys.append(PublishedKey(key_id(signer), public_key_pem(signer).decode(), True))
    for pem in settings.TRUSTED_PUBLIC_KEYS:
        public = load_public_key(pem)
        if all(key.key_id != key_id(public) for key in keys):
            keys.append(PublishedKey(key_id(public), public_key_pem(public).decode(), False))
    return keys


def trusted_keys() -> list[ec.EllipticCurvePublicKey]:
    """Every key a signature may be made with and still verify (empty: nothing is verified)."""
    return [load_public_key(key.pem) for key in published_keys()]


def signing_configured() -> bool:
    """Whether releases are signed now, or keys are trusted to verify older ones."""
    return signing_key() is not None or bool(settings.TRUSTED_PUBLIC_KEYS)
