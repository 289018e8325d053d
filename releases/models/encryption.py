"""Secret values encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

Keys come from ``FIELD_ENCRYPTION_KEYS`` (settings): the first encrypts, every one decrypts
(``MultiFernet``), so a key is rotated by adding the new one first, running
``manage.py reencrypt_secrets``, then removing the old one. A stored ciphertext starts with
``ENCRYPTED_PREFIX``; without a key, storing or reading a secret refuses with
``ImproperlyConfigured`` naming the setting.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

ENCRYPTED_PREFIX = "enc:fernet:"

__all__ = ["ENCRYPTED_PREFIX", "SecretValueField", "decrypt_value", "encrypt_value", "is_encrypted"]


@lru_cache(maxsize=4)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def encryption_box() -> MultiFernet:
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is required to store or read secret values; set it to a key made with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    return _box(keys)


def is_encrypted(stored: str | None) -> bool:
    return bool(stored) and stored.startswith(ENCRYPTED_PREFIX)


def encrypt_value(plain: str) -> str:
    """The stored form of ``plain``, encrypted with the first key."""
    return ENCRYPTED_PREFIX + encryption_box().encrypt(plain.encode()).decode("ascii")


def decrypt_value(stored: str) -> str:
    """The plain value of a stored one; a value that is not encrypted is returned as it is."""
    if not is_encrypted(stored):
        return stored
    try:
        return encryption_box().decrypt(stored.removeprefix(ENCRYPTED_PREFIX).encode("ascii")).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "a secret value was encrypted with a key that is not in FIELD_ENCRYPTION_KEYS; add that key back "
            "(after the current one) and run manage.py reencrypt_secrets"
        ) from None


class SecretValueField(models.TextField):
    """A text column whose value is encrypted at rest when the row's ``secret_flag`` field is true.

    In Python the value is always plain: it is encrypted as it is written (``pre_save``) and
    decrypted as it is read. Other rows' values stay plain text. Writes that skip ``save()``
    (``QuerySet.update``) are not encrypted; ``reencrypt_secrets`` catches them up.
    """

    def __init__(self, *args, secret_flag: str = "secret", **kwargs) -> None:
        self.secret_flag = secret_flag
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        # The column stays a text column: only how Python reads and writes it changes, so the
        # migrations see a TextField (and rebuild nothing).
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.TextField", args, kwargs

    def pre_save(self, model_instance, add: bool):
        value = super().pre_save(model_instance, add)
        if value and getattr(model_instance, self.secret_flag) and not is_encrypted(value):
            return encrypt_value(value)
        return value

    def from_db_value(self, value, expression, connection):
        return decrypt_value(value) if is_encrypted(value) else value
