"""ECDSA P-256 signing keys: load, generate, fingerprint.

cosign signs with ECDSA P-256 over SHA-256 by default, so that is the one key type accepted here;
anything else is refused with :class:`~releases.signing.errors.UnsupportedKey` rather than
silently producing signatures that ``cosign verify --key`` cannot check.

Private keys are read from PEM: PKCS#8 (``PRIVATE KEY``, or ``ENCRYPTED PRIVATE KEY`` with a
password), SEC1 (``EC PRIVATE KEY``), and cosign's own ``ENCRYPTED SIGSTORE PRIVATE KEY`` (and the
older ``ENCRYPTED COSIGN PRIVATE KEY``): a JSON envelope (go-tuf ``encrypted``) holding the PKCS#8
DER sealed with NaCl secretbox under a key derived from the password with scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from releases.signing.errors import KeyDecryptionError, UnsupportedKey

#: What :func:`load_public_key` and the verifiers accept: a key object or its PEM.
PublicKeyLike = ec.EllipticCurvePublicKey | bytes | str

COSIGN_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")

# go-tuf "encrypted" parameters used by cosign; other values are refused (as cosign does) so a
# crafted key file cannot make us spend unbounded memory in scrypt.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 32768, 8, 1
_SALT_BYTES, _NONCE_BYTES, _BOX_KEY_BYTES = 32, 24, 32

_CONVERT_HINT = (
    "use an ECDSA P-256 key (cosign generate-key-pair, or "
    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)"
)


def _check_p256(key: object, what: str) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        kind = type(key).__name__.lstrip("_")
        raise UnsupportedKey(f"{what} is a {kind}, not an ECDSA key; {_CONVERT_HINT}")
    if not isinstance(key.curve, ec.SECP256R1):
        raise UnsupportedKey(f"{what} is on curve {key.curve.name}, not P-256 (secp256r1); {_CONVERT_HINT}")


def _pem_label(pem: bytes) -> str | None:
    for line in pem.splitlines():
        line = line.strip()
        if line.startswith(b"-----BEGIN ") and line.endswith(b"-----"):
            return line[len(b"-----BEGIN ") : -len(b"-----")].decode("ascii", "replace")
    return None


def _pem_body(pem: bytes, label: str) -> bytes:
    begin, end = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    try:
        body = pem.split(begin, 1)[1].split(end, 1)[0]
    except IndexError as exc:
        raise UnsupportedKey(f"the {label} PEM block is not terminated by '-----END {label}-----'") from exc
    return base64.b64decode(b"".join(body.split()), validate=True)


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def load_private_key(pem: bytes | str, password: bytes | str | None = None) -> ec.EllipticCurvePrivateKey:
    """The ECDSA P-256 private key in ``pem``.

    Reads PKCS#8 (plain or password-protected), SEC1 and cosign's encrypted format. Refuses
    (:class:`UnsupportedKey`) other key types and curves and unreadable PEM, and
    (:class:`KeyDecryptionError`) an encrypted key without its password or with the wrong one.
    """
    data = _as_bytes(pem) or b""
    secret = _as_bytes(password)
    label = _pem_label(data)
    if label is None:
        raise UnsupportedKey("the private key is not PEM (no '-----BEGIN ...-----' line); " + _CONVERT_HINT)
    if label in COSIGN_PEM_TYPES:
        if not secret:
            raise KeyDecryptionError(f"the {label} is encrypted; give its password (what cosign calls COSIGN_PASSWORD)")
        der = _decrypt_cosign_envelope(_pem_body(data, label), secret)
        key: object = serialization.load_der_private_key(der, password=None)
        _check_p256(key, "the cosign private key")
        return key  # type: ignore[return-value]
    encrypted = label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in data
    if encrypted and not secret:
        raise KeyDecryptionError(f"the private key is encrypted ({label}); give its password")
    try:
        key = serialization.load_pem_private_key(data, password=secret if encrypted else None)
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKey(
            f"the private key ({label}) uses an unsupported algorithm: {exc}; {_CONVERT_HINT}"
        ) from exc
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise KeyDecryptionError("the password for the private key is wrong (could not decrypt it)") from exc
        raise UnsupportedKey(f"could not read the {label} PEM block: {exc}; {_CONVERT_HINT}") from exc
    _check_p256(key, "the private key")
    return key  # type: ignore[return-value]


def load_public_key(pem: PublicKeyLike) -> ec.EllipticCurvePublicKey:
    """The ECDSA P-256 public key in ``pem`` (``PUBLIC KEY``, i.e. what ``cosign.pub`` holds).

    A key object is checked and returned as is. Refuses other key types and curves
    (:class:`UnsupportedKey`).
    """
    if isinstance(pem, ec.EllipticCurvePublicKey):
        _check_p256(pem, "the public key")
        return pem
    data = _as_bytes(pem) or b""
    try:
        key: object = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UnsupportedKey(
            f"could not read the public key PEM: {exc}; expected a '-----BEGIN PUBLIC KEY-----' block"
        ) from exc
    _check_p256(key, "the public key")
    return key  # type: ignore[return-value]


def public_key_pem(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The PEM (``PUBLIC KEY``, SubjectPublicKeyInfo) of a key's public half: cosign's ``.pub``."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: PublicKeyLike | ec.EllipticCurvePrivateKey) -> str:
    """A stable fingerprint of a key's public half: hex SHA-256 of its DER SubjectPublicKeyInfo.

    The same value as ``openssl pkey -pubin -outform DER | sha256sum``; used as the DSSE
    ``keyid`` and in verification details.
    """
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else load_public_key(key)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate_key_pair(password: bytes | str | None = None) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair as ``(private_pem, public_pem)``.

    The private key is PKCS#8, encrypted with ``password`` (``ENCRYPTED PRIVATE KEY``, which
    openssl and :func:`load_private_key` read) when one is given.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    secret = _as_bytes(password)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return private_pem, public_key_pem(key)


# -- cosign's encrypted format --------------------------------------------------------------------


def _scrypt(password: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=_BOX_KEY_BYTES, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(password)


def _secretbox() -> Any:
    try:
        from nacl.secret import SecretBox
    except ImportError as exc:  # pragma: no cover - PyNaCl is pinned in requirements/base.txt
        raise UnsupportedKey(
            "reading cosign's encrypted key format needs PyNaCl (requirements/base.txt); install it, or "
            "convert the key to an ECDSA P-256 PKCS#8 PEM and use that"
        ) from exc
    return SecretBox


def _decrypt_cosign_envelope(envelope: bytes, password: bytes) -> bytes:
    try:
        document = json.loads(envelope)
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(document["ciphertext"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UnsupportedKey(f"the cosign private key is not a readable encrypted envelope: {exc}") from exc
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise UnsupportedKey(
            f"the cosign private key uses kdf {kdf.get('name')!r} and cipher {cipher.get('name')!r}; "
            "only scrypt with nacl/secretbox is supported: convert the key to PKCS#8"
        )
    if (params.get("N"), params.get("r"), params.get("p")) != (_SCRYPT_N, _SCRYPT_R, _SCRYPT_P):
        raise UnsupportedKey(
            f"the cosign private key uses scrypt parameters {params}; only N=32768, r=8, p=1 (cosign's) are accepted"
        )
    if len(nonce) != _NONCE_BYTES:
        raise UnsupportedKey(f"the cosign private key has a {len(nonce)}-byte nonce, expected {_NONCE_BYTES}")
    box = _secretbox()(_scrypt(password, salt))
    from nacl.exceptions import CryptoError

    try:
        return bytes(box.decrypt(ciphertext, nonce))
    except CryptoError as exc:
        raise KeyDecryptionError("the password for the cosign private key is wrong (could not decrypt it)") from exc


def encrypt_cosign_private_key(private_key: ec.EllipticCurvePrivateKey, password: bytes | str) -> bytes:
    """``private_key`` as cosign writes ``cosign.key``: an ``ENCRYPTED SIGSTORE PRIVATE KEY`` PEM.

    Refuses an empty password (``ValueError``): cosign would accept it, but a release signing key
    must not sit on disk unprotected.
    """
    _check_p256(private_key, "the private key")
    secret = _as_bytes(password)
    if not secret:
        raise ValueError("give a non-empty password to encrypt the signing key with")
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(_NONCE_BYTES)
    sealed = _secretbox()(_scrypt(secret, salt)).encrypt(der, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    encoded = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    lines = "".join(encoded[start : start + 64] + "\n" for start in range(0, len(encoded), 64))
    label = COSIGN_PEM_TYPES[0]
    return f"-----BEGIN {label}-----\n{lines}-----END {label}-----\n".encode()
