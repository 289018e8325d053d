"""Every published row and what hangs from it is immutable in the database; see ``releases.database.triggers``.

Reversible: migrating back to 0009 restores the triggers of 0002.
"""

from django.db import migrations

from releases.database.triggers import freeze_published_rows, restore_0002_triggers


class Migration(migrations.Migration):
    dependencies = [("releases", "0012_stored_changelog")]

    operations = [migrations.RunPython(freeze_published_rows, restore_0002_triggers)]
