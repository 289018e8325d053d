"""Joins two independent 0010s: the version sort keys (branch ``versions``) and the registry
artifact base (``main``)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0010_collation_independent_version_keys"),
        ("releases", "0010_registry_artifact_base"),
    ]

    operations = []
