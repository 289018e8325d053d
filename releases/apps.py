from django.apps import AppConfig
from django.conf import settings
from django.contrib.admin import apps as admin_apps
from django.core import checks
from django.db import connections
from django.db.models.signals import post_migrate, pre_migrate


def lift_immutability_triggers(sender, using="default", **kwargs) -> None:
    """SQLite cannot rebuild a table another table's trigger reads: drop the triggers for the migrate."""
    from releases.database import withdrawals as db_withdrawals
    from releases.database.triggers import lift_for_migrate

    with connections[using].schema_editor() as editor:
        lift_for_migrate(editor)
        db_withdrawals.lift_for_migrate(editor)


def restore_immutability_triggers(sender, using="default", **kwargs) -> None:
    """SQLite drops triggers when a migration rebuilds a table: put them back after every migrate."""
    from releases.database import withdrawals as db_withdrawals
    from releases.database.triggers import ensure_triggers

    with connections[using].schema_editor() as editor:
        ensure_triggers(editor)
        db_withdrawals.ensure_triggers(editor)


def check_visibility_timeout(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A task outliving the broker's visibility timeout is delivered to a second worker while it runs."""
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    if timeout > settings.LONGEST_HARD_LIMIT_SECONDS:
        return []
    return [
        checks.Warning(
            f"CELERY_VISIBILITY_TIMEOUT ({timeout} s) is not longer than the longest task's hard time limit "
            f"({settings.LONGEST_HARD_LIMIT_SECONDS} s): a task still running after {timeout} s is delivered "
            "to a second worker as well",
            hint=(
                f"unset CELERY_VISIBILITY_TIMEOUT (default {settings.LONGEST_HARD_LIMIT_SECONDS + 300} s) or raise it, "
                "or lower BUILD_TIME_LIMIT_SECONDS / AUDIT_TIME_LIMIT_SECONDS"
            ),
            id="releases.W001",
        )
    ]


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the generation bumps)
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from .schedules import schedule_stalled_work_sweep, schedule_tag_audit

        checks.register(check_visibility_timeout, checks.Tags.compatibility)
        pre_migrate.connect(lift_immutability_triggers, sender=self)
        post_migrate.connect(restore_immutability_triggers, sender=self)
        post_migrate.connect(schedule_tag_audit, sender=self)
        post_migrate.connect(schedule_stalled_work_sweep, sender=self)


class RegistryAdminConfig(admin_apps.AdminConfig):
    """The admin, with the control room (``releases.admin.site``) as its default site. Named in
    INSTALLED_APPS in place of ``django.contrib.admin``; not this module's default config."""

    default = False

    default_site = "releases.admin.site.ControlRoomAdminSite"

    def ready(self) -> None:
        super().ready()
        from releases.admin import register_screens

        register_screens()
