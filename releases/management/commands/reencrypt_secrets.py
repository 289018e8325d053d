"""``manage.py reencrypt_secrets``: encrypt every secret value with the first key of
``FIELD_ENCRYPTION_KEYS``, the step between adding a new key (first) and removing the old one.
Also encrypts secret values written in plain text (by a ``QuerySet.update``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from releases.models import EnvironmentVariable
from releases.models.encryption import encrypt_value


class Command(BaseCommand):
    help = "Re-encrypt secret environment-variable values with the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options) -> None:
        count = 0
        with transaction.atomic():
            # Reading decrypts with any configured key; writing the new ciphertext directly.
            for pk, plain in (
                EnvironmentVariable.objects.select_for_update()
                .filter(secret=True)
                .exclude(default_value="")
                .values_list("pk", "default_value")
            ):
                EnvironmentVariable.objects.filter(pk=pk).update(default_value=encrypt_value(plain))
                count += 1
        self.stdout.write(f"re-encrypted {count} secret value(s) with the first FIELD_ENCRYPTION_KEYS key")
