"""Immutability triggers; see ``releases.database.triggers``."""

from django.db import migrations

from releases.database.triggers import create_triggers, drop_triggers


class Migration(migrations.Migration):
    dependencies = [("releases", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
