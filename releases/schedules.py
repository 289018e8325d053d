"""The beat schedule of the tag-immutability audit, created once after ``migrate``.

It is a django-celery-beat ``PeriodicTask`` every ``AUDIT_INTERVAL_MINUTES``; later edits in the
admin (interval, enabled) are kept, because it is only created when missing.
"""

from __future__ import annotations

from django.conf import settings

AUDIT_TASK_NAME = "tag-immutability-audit"


def schedule_tag_audit(sender, **kwargs) -> None:
    """post_migrate receiver: create the audit's schedule unless it exists."""
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
