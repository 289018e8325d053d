"""The build record of an image (every stage's base and digest; per platform, the build's steps with
their durations and cache hits), frozen with the published row by the triggers of
``releases.database.triggers`` (``TABLES``). Reversible: migrating back to 0020 restores its triggers.
"""

from django.db import migrations, models

from releases.database.triggers import freeze_build_record, lift_on_sqlite, restore_0020_triggers


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0023_trust_digest_indexes"),
    ]

    operations = [
        migrations.RunPython(lift_on_sqlite, lift_on_sqlite),
        migrations.AlterField(
            model_name="dockerimage",
            name="base_image",
            field=models.CharField(
                blank=True,
                help_text="The final stage's base image, pinned by digest when its registry says.",
                max_length=255,
            ),
        ),
        migrations.AddField(
            model_name="dockerimage",
            name="stage_bases",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Every stage of the Dockerfile: its name, its base image as resolved, the digest it was built from, the FROM --platform as written, and whether it is the final stage.",
            ),
        ),
        migrations.AddField(
            model_name="dockerimage",
            name="build_steps",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Per platform: the build network, the seconds the build took and every step with its duration and whether it came from the cache.",
            ),
        ),
        migrations.RunPython(freeze_build_record, restore_0020_triggers),
    ]
