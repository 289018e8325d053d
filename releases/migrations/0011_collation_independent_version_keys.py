"""Version sort keys that order the same under every collation (see ``releases.versions``).

The old keys mixed digits and punctuation ("~", "!", "."), which ICU and glibc collations do not
order like ASCII: ``1.0.0`` could sort before ``1.0.0-rc.1``. The new keys are lowercase hex and
up to ``SORT_KEY_MAX_LENGTH`` (382) characters, so the columns widen first, then every row's key
is recomputed.
"""

import importlib

from django.db import migrations, models

from releases.versions import column_sort_key

# The keys as 0005 computed them, for going back.
old_sort_key = importlib.import_module("releases.migrations.0005_version_order_and_api_tokens").semver_sort_key

KEYS = (
    ("DockerImage", "tag_order", "tag"),
    ("HelmChart", "version_order", "chart_version"),
    ("ReleaseVersion", "version_order", "version"),
)
BATCH = 500


def recompute_sort_keys(apps, schema_editor, sort_key=column_sort_key):
    for model_name, key_field, version_field in KEYS:
        Model = apps.get_model("releases", model_name)
        changed = []
        for row in Model.objects.only("pk", key_field, version_field).order_by("pk").iterator(chunk_size=BATCH):
            key = sort_key(getattr(row, version_field))
            if getattr(row, key_field) != key:
                setattr(row, key_field, key)
                changed.append(row)
            if len(changed) >= BATCH:
                Model.objects.bulk_update(changed, [key_field])
                changed = []
        Model.objects.bulk_update(changed, [key_field])


def restore_old_sort_keys(apps, schema_editor):
    recompute_sort_keys(apps, schema_editor, sort_key=old_sort_key)


def key_field(help_text="Sorts by semver whatever the collation (releases.versions.column_sort_key)."):
    return models.CharField(db_index=True, default="", editable=False, help_text=help_text, max_length=382)


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0010_registry_artifact_base"),
    ]

    operations = [
        migrations.AlterField(model_name="dockerimage", name="tag_order", field=key_field()),
        migrations.AlterField(model_name="helmchart", name="version_order", field=key_field()),
        migrations.AlterField(model_name="releaseversion", name="version_order", field=key_field()),
        # Going back restores the old keys; it fails (and changes nothing) if a stored version's
        # old key does not fit the old 128-character column, as the old code would have.
        migrations.RunPython(recompute_sort_keys, restore_old_sort_keys),
    ]
