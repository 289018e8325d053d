"""Audit runs and their findings."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import path

from releases import services
from releases.models import (
    AuditFinding,
    AuditRun,
)


@admin.register(AuditRun)
class AuditRunAdmin(admin.ModelAdmin):
    list_display = (
        "started",
        "finished",
        "status",
        "tags_checked",
        "new_findings",
        "resolved_findings",
        "findings_by_type",
        "triggered_by",
    )
    list_filter = ("status", "triggered_by")
    change_list_template = "admin/releases/auditrun/change_list.html"

    def get_urls(self):
        start = path("run/", self.admin_site.admin_view(self.start_audit), name="releases_auditrun_start")
        return [start, *super().get_urls()]

    def may_start_audit(self, request: HttpRequest) -> bool:
        return services.may(request.user, "start_audit")

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "may_start_audit": self.may_start_audit(request)}
        return super().changelist_view(request, extra_context)

    def start_audit(self, request: HttpRequest):
        """ "Run an audit now": needs the ``releases.add_auditrun`` permission, like ``POST /api/v1/audits/``."""
        if request.method == "POST":
            if not self.may_start_audit(request):
                raise PermissionDenied("starting an audit needs the 'Can add audit run' permission")
            services.start_audit(triggered_by=f"admin:{request.user}")
            self.message_user(request, "Audit started; refresh this page to see it.", messages.SUCCESS)
        return redirect("admin:releases_auditrun_changelist")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "resolved_at__isnull"

    def lookups(self, request, model_admin):
        return [("True", "open"), ("False", "resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("True", "False"):
            return queryset.filter(resolved_at__isnull=self.value() == "True")
        return queryset


@admin.register(AuditFinding)
class AuditFindingAdmin(admin.ModelAdmin):
    list_display = ("type", "severity", "artifact", "expected", "actual", "first_seen", "last_seen", "resolved_at")
    list_filter = (OpenFilter, "type", "severity")
    search_fields = ("artifact", "expected", "actual")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
