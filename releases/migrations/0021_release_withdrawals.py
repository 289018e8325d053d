"""Withdrawals of published releases: an append-only record (``ReleaseWithdrawal``), kept so by the
triggers of ``releases.database.withdrawals``."""

import django.db.models.deletion
import django.db.models.functions.math
import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models

from releases.database.withdrawals import drop_withdrawal_triggers, install_withdrawal_triggers


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0020_signing"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReleaseWithdrawal",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "sequence",
                    models.PositiveIntegerField(help_text="1, 2, 3... per release: odd withdraws, even restores."),
                ),
                ("action", models.CharField(choices=[("withdraw", "Withdraw"), ("restore", "Restore")], max_length=16)),
                ("reason", models.TextField(help_text="Why: shown to everyone who asks about the release.")),
                (
                    "actor",
                    models.CharField(help_text="Who: a username, or token:<name> for an API token.", max_length=255),
                ),
                ("created", models.DateTimeField(auto_now_add=True)),
                (
                    "release",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="withdrawals",
                        to="releases.releaseversion",
                    ),
                ),
            ],
            options={
                "ordering": ["release", "sequence"],
                "permissions": [("withdraw_releaseversion", "Can withdraw and restore a published release")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("release", "sequence"), name="withdrawal_sequence_once_per_release"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                models.Q(
                                    django.db.models.lookups.Exact(
                                        django.db.models.functions.math.Mod("sequence", 2), 1
                                    ),
                                    ("action", "withdraw"),
                                ),
                                models.Q(
                                    django.db.models.lookups.Exact(
                                        django.db.models.functions.math.Mod("sequence", 2), 0
                                    ),
                                    ("action", "restore"),
                                ),
                                _connector="OR",
                            ),
                            ("sequence__gte", 1),
                        ),
                        name="withdrawal_alternates_with_restore",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            django.db.models.lookups.Exact(django.db.models.functions.text.Trim("reason"), ""),
                            _negated=True,
                        ),
                        name="withdrawal_reason_required",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("actor", ""), _negated=True), name="withdrawal_actor_required"
                    ),
                ],
            },
        ),
        migrations.RunPython(install_withdrawal_triggers, drop_withdrawal_triggers),
    ]
