"""Exceptions raised by :mod:`releases.signing`.

Every exception derives from :class:`SigningError`. Messages are written for the person who holds
the key or operates the registry: they say what was refused and what to do instead.
"""

from __future__ import annotations


class SigningError(Exception):
    """Base class: anything this package refuses."""


class UnsupportedKey(SigningError):  # noqa: N818 - reads as the refusal it is
    """The key is not an ECDSA P-256 key, or comes in a format this package does not read."""


class KeyDecryptionError(SigningError):
    """The key is encrypted and the password is missing or wrong."""


class MalformedSignature(SigningError):  # noqa: N818
    """A signature, payload, envelope or signature manifest is not in the expected format."""
