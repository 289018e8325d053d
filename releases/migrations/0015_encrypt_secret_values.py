"""Secret environment-variable values are encrypted at rest (``FIELD_ENCRYPTION_KEYS``).

The column stays text; this encrypts the secret values stored in plain text so far (and decrypts
them when reversed). It needs a key only when a secret value exists.
"""

from django.db import migrations

from releases.models.encryption import decrypt_value, encrypt_value, is_encrypted


def encrypt_secret_values(apps, schema_editor):
    EnvironmentVariable = apps.get_model("releases", "EnvironmentVariable")
    for pk, value in EnvironmentVariable.objects.filter(secret=True).exclude(default_value="").values_list(
        "pk", "default_value"
    ):
        if not is_encrypted(value):
            EnvironmentVariable.objects.filter(pk=pk).update(default_value=encrypt_value(value))


def decrypt_secret_values(apps, schema_editor):
    EnvironmentVariable = apps.get_model("releases", "EnvironmentVariable")
    for pk, value in EnvironmentVariable.objects.filter(secret=True).values_list("pk", "default_value"):
        if is_encrypted(value):
            EnvironmentVariable.objects.filter(pk=pk).update(default_value=decrypt_value(value))


class Migration(migrations.Migration):
    dependencies = [("releases", "0014_stall_tracking")]

    operations = [migrations.RunPython(encrypt_secret_values, decrypt_secret_values)]
