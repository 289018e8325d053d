"""What was signed at publication (key id, .sig/.att manifest digests, the SLSA provenance), frozen
with the published row by the triggers of ``releases.database.triggers`` (``TABLES``).

The audit's finding types for signatures and attestations. Reversible: migrating back to 0018
restores the triggers of 0017.
"""

from django.db import migrations, models

from releases.database.triggers import freeze_signing_records, lift_on_sqlite, restore_0017_triggers


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0019_audit_shards"),
    ]

    operations = [
        migrations.RunPython(lift_on_sqlite, lift_on_sqlite),
        migrations.AddField(
            model_name="dockerimage",
            name="provenance",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Per platform, the signed SLSA provenance attached to its manifest (DSSE envelope).",
            ),
        ),
        migrations.AddField(
            model_name="dockerimage",
            name="signatures",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Per signed manifest digest: what it is (index, platform or chart) and the digests of its cosign .sig (and .att) manifests as written at publication.",
            ),
        ),
        migrations.AddField(
            model_name="dockerimage",
            name="signed_with",
            field=models.CharField(
                blank=True,
                help_text="Id of the key that signed it (hex SHA-256 of the public key); empty: published unsigned.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="helmchart",
            name="signatures",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Per signed manifest digest: what it is (index, platform or chart) and the digests of its cosign .sig (and .att) manifests as written at publication.",
            ),
        ),
        migrations.AddField(
            model_name="helmchart",
            name="signed_with",
            field=models.CharField(
                blank=True,
                help_text="Id of the key that signed it (hex SHA-256 of the public key); empty: published unsigned.",
                max_length=64,
            ),
        ),
        migrations.AlterField(
            model_name="auditfinding",
            name="type",
            field=models.CharField(
                choices=[
                    ("mismatch", "Mismatch"),
                    ("missing", "Missing"),
                    ("platform_drift", "Platform Drift"),
                    ("chart_app_version_broken", "Chart App Version Broken"),
                    ("latest_behind", "Latest Behind"),
                    ("unreachable", "Unreachable"),
                    ("signature_missing", "Signature Missing"),
                    ("signature_invalid", "Signature Invalid"),
                    ("attestation_missing", "Attestation Missing"),
                ],
                max_length=32,
            ),
        ),
        migrations.RunPython(freeze_signing_records, restore_0017_triggers),
    ]
