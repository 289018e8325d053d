from django.db import migrations, models
from django.db.models import Q
from django.utils import timezone


def close_extra_running_runs(apps, schema_editor):
    """Before at most one run may be running: every running run but the newest ended crashed."""
    AuditRun = apps.get_model("releases", "AuditRun")
    running = AuditRun.objects.filter(status="running").order_by("-started")
    newest = running.first()
    if newest is not None:
        running.exclude(pk=newest.pk).update(
            status="crashed", finished=timezone.now(), error="the audit stopped before it finished"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0018_control_room_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditrun",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Last progress of any of its batches; a running run silent too long is dead.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="auditrun",
            name="shards_total",
            field=models.PositiveIntegerField(default=0, help_text="Batches the tags were split into."),
        ),
        migrations.AddField(
            model_name="auditrun",
            name="shards_done",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(close_extra_running_runs, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="auditrun",
            constraint=models.UniqueConstraint(
                condition=Q(status="running"),
                fields=("status",),
                name="audit_run_one_running",
                violation_error_message="another audit is running; wait for it to finish",
            ),
        ),
    ]
