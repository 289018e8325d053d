"""Bump the data generations that rendered-page caches key on, inside the writing transaction."""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.db.models.signals import post_delete, post_migrate, post_save, pre_migrate
from django.dispatch import receiver

from .db_triggers import ensure_triggers, lift_for_migrate
from .models import DataGeneration, HelmChart, ReleaseArtifact, ReleaseVersion

AUDIT_TASK_NAME = "tag-immutability-audit"


@receiver([post_save, post_delete], sender=ReleaseVersion)
@receiver([post_save, post_delete], sender=ReleaseArtifact)
def releases_changed(sender, **kwargs) -> None:
    DataGeneration.bump(DataGeneration.RELEASES)


@receiver([post_save, post_delete], sender=HelmChart)
def charts_changed(sender, **kwargs) -> None:
    DataGeneration.bump(DataGeneration.CHARTS)


@receiver(pre_migrate)
def lift_immutability_triggers(sender, using="default", **kwargs) -> None:
    """SQLite cannot rebuild a table another table's trigger reads: drop the triggers for the migrate."""
    if sender.name != "releases":
        return
    with connections[using].schema_editor() as editor:
        lift_for_migrate(editor)


@receiver(post_migrate)
def keep_immutability_triggers(sender, using="default", **kwargs) -> None:
    """SQLite drops triggers when a migration rebuilds a table: put them back after every migrate."""
    if sender.name != "releases":
        return
    with connections[using].schema_editor() as editor:
        ensure_triggers(editor)


@receiver(post_migrate)
def schedule_tag_audit(sender, **kwargs) -> None:
    """Create the beat schedule of the audit once (every AUDIT_INTERVAL_MINUTES); later edits in the
    admin (django-celery-beat) are kept."""
    if sender.name != "releases":
        return
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=AUDIT_TASK_NAME).exists():
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.AUDIT_INTERVAL_MINUTES, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.create(
        name=AUDIT_TASK_NAME,
        task="releases.tasks.audit_published_tags",
        interval=interval,
        kwargs='{"triggered_by": "beat"}',
    )
