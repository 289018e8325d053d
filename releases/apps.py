from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db import connections
from django.db.models.signals import post_migrate, pre_migrate


def lift_immutability_triggers(sender, using="default", **kwargs) -> None:
    """SQLite cannot rebuild a table another table's trigger reads: drop the triggers for the migrate."""
    from .db_triggers import lift_for_migrate

    with connections[using].schema_editor() as editor:
        lift_for_migrate(editor)


def restore_immutability_triggers(sender, using="default", **kwargs) -> None:
    """SQLite drops triggers when a migration rebuilds a table: put them back after every migrate."""
    from .db_triggers import ensure_triggers

    with connections[using].schema_editor() as editor:
        ensure_triggers(editor)


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the generation bumps)
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from .schedules import schedule_stalled_work_sweep, schedule_tag_audit

        pre_migrate.connect(lift_immutability_triggers, sender=self)
        post_migrate.connect(restore_immutability_triggers, sender=self)
        post_migrate.connect(schedule_tag_audit, sender=self)
        post_migrate.connect(schedule_stalled_work_sweep, sender=self)


class RegistryAdminConfig(admin_apps.AdminConfig):
    """The admin, with the control room (``releases.admin_site``) as its default site. Named in
    INSTALLED_APPS in place of ``django.contrib.admin``; not this module's default config."""

    default = False

    default_site = "releases.admin_site.ControlRoomAdminSite"
