"""The beat schedules, created once after ``migrate``: the tag-immutability audit and the sweeper of
stalled work.

Each is a django-celery-beat ``PeriodicTask`` (every ``AUDIT_INTERVAL_MINUTES`` and
``SWEEP_INTERVAL_MINUTES``); later edits in the admin (interval, enabled) are kept, because a
schedule is only created when missing.
"""

from __future__ import annotations

from django.conf import settings

AUDIT_TASK_NAME = "tag-immutability-audit"
SWEEP_TASK_NAME = "stalled-work-sweeper"


def _create_schedule(name: str, task: str, every_minutes: int, kwargs: str = "{}") -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=name).exists():
        return
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_minutes, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name=name, task=task, interval=interval, kwargs=kwargs)


def schedule_tag_audit(sender, **kwargs) -> None:
    """post_migrate receiver: create the audit's schedule unless it exists."""
    if sender.name != "releases":
        return
    _create_schedule(
        AUDIT_TASK_NAME,
        "releases.tasks.audit_published_tags",
        settings.AUDIT_INTERVAL_MINUTES,
        '{"triggered_by": "beat"}',
    )


def schedule_stalled_work_sweep(sender, **kwargs) -> None:
    """post_migrate receiver: create the sweeper's schedule unless it exists."""
    if sender.name != "releases":
        return
    _create_schedule(SWEEP_TASK_NAME, "releases.tasks.sweep_stalled_work", settings.SWEEP_INTERVAL_MINUTES)
