"""Version sort keys that order the same under every collation (see ``releases.versions``).

The old keys mixed digits and punctuation ("~", "!", "."), which ICU and glibc collations do not
order like ASCII: ``1.0.0`` could sort before ``1.0.0-rc.1``. The new keys are lowercase hex and
up to ``SORT_KEY_MAX_LENGTH`` (382) characters, so the columns widen first, then every row's key
is recomputed.
"""

from django.db import migrations, models

from releases.versions import column_sort_key

KEYS = (
    ("DockerImage", "tag_order", "tag"),
    ("HelmChart", "version_order", "chart_version"),
    ("ReleaseVersion", "version_order", "version"),
)
BATCH = 500


def recompute_sort_keys(apps, schema_editor):
    for model_name, key_field, version_field in KEYS:
        Model = apps.get_model("releases", model_name)
        changed = []
        for row in Model.objects.only("pk", key_field, version_field).order_by("pk").iterator(chunk_size=BATCH):
            key = column_sort_key(getattr(row, version_field))
            if getattr(row, key_field) != key:
                setattr(row, key_field, key)
                changed.append(row)
            if len(changed) >= BATCH:
                Model.objects.bulk_update(changed, [key_field])
                changed = []
        Model.objects.bulk_update(changed, [key_field])


def key_field(help_text="Sorts by semver whatever the collation (releases.versions.column_sort_key)."):
    return models.CharField(db_index=True, default="", editable=False, help_text=help_text, max_length=382)


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0009_audits"),
    ]

    operations = [
        migrations.AlterField(model_name="dockerimage", name="tag_order", field=key_field()),
        migrations.AlterField(model_name="helmchart", name="version_order", field=key_field()),
        migrations.AlterField(model_name="releaseversion", name="version_order", field=key_field()),
        # Not reversible: the old keys misorder under ICU/glibc collations, and the old key of a
        # long pre-release does not fit the old 128-character column.
        migrations.RunPython(recompute_sort_keys),
    ]
