"""The :class:`~.decisions.Policy` the settings and the signing keys make."""

from __future__ import annotations

import functools

from django.conf import settings

from releases.adapters.signing_keys import published_keys, signing_key_id

from .decisions import Policy


@functools.lru_cache(maxsize=4)
def _trusted_key_ids(signer_id: str, trusted: tuple[bytes, ...]) -> frozenset[str]:
    return frozenset(key.key_id for key in published_keys())


def current_policy() -> Policy:
    """``REGISTRY_NAMESPACE``, whether signatures are required (``SIGNING_KEY`` is set), the ids of
    the trusted keys (the signing key's and ``TRUSTED_SIGNING_KEYS``), and the admission settings."""
    signer = signing_key_id()
    return Policy(
        namespace=settings.REGISTRY_NAMESPACE,
        signing_required=bool(signer),
        trusted_keys=_trusted_key_ids(signer, tuple(settings.TRUSTED_PUBLIC_KEYS)),
        allowed_images=tuple(settings.ADMISSION_ALLOWED_IMAGES),
        warn_namespaces=tuple(settings.ADMISSION_WARN_NAMESPACES),
        pin_namespaces=tuple(settings.ADMISSION_PIN_NAMESPACES),
    )
