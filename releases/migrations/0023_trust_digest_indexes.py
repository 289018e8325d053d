"""Verify and admission look artifacts up by digest (``releases.trust.records``): a btree index on
the index/chart digest, and on PostgreSQL a GIN index on ``platform_digests`` for the platform
manifests' digests (``platform_digests @@ '$.*.digest == "sha256:..."'``; SQLite scans)."""

from django.db import migrations, models

GIN = "image_platform_digests_gin"


def create_gin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {GIN} ON releases_dockerimage USING gin (platform_digests)")


def drop_gin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {GIN}")


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0022_latest_tags"),
    ]

    operations = [
        migrations.AddIndex(model_name="dockerimage", index=models.Index(fields=["digest"], name="image_digest_idx")),
        migrations.AddIndex(model_name="helmchart", index=models.Index(fields=["digest"], name="chart_digest_idx")),
        migrations.RunPython(create_gin, drop_gin),
    ]
