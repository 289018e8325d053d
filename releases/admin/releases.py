"""The release screen and its artifacts."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from releases import services
from releases.admin import controlroom
from releases.admin.display import short_digest
from releases.admin.transitions import StalledFilter, StateTransitionInline, TransitionAdmin
from releases.admin.withdrawal import withdrawal_context, withdrawal_urls
from releases.choices import ReleaseState
from releases.models import (
    ReleaseArtifact,
    ReleaseVersion,
)


class ReleaseArtifactInline(admin.TabularInline):
    model = ReleaseArtifact
    extra = 0
    fields = ("type", "uri", "checksum", "size", "docker_image", "helm_chart")
    raw_id_fields = ("docker_image", "helm_chart")


@admin.register(ReleaseVersion)
class ReleaseVersionAdmin(TransitionAdmin):
    final_states = (ReleaseState.PUBLISHED,)
    transition_actions = {
        "submit": services.publish_release,
        "retry": services.retry_release,
        "fail": partial(services.fail_work, ReleaseVersion),
    }
    list_display = (
        "version",
        "state",
        "release_date",
        "commit_short",
        "pr_number",
        "artifact_count",
        "stalled",
        "failed_artifact",
    )
    list_filter = ("state", StalledFilter)
    search_fields = ("version", "commit_sha", "changelog", "release_notes")
    readonly_fields = (
        "failure_reason",
        "failed_artifact",
        "published_at",
        "shown_layout",
        "last_progress_at",
        "stall_requeues",
    )
    inlines = [ReleaseArtifactInline, StateTransitionInline]

    @admin.display(description="layout (.release-registry.yaml with the defaults filled in)")
    def shown_layout(self, obj: ReleaseVersion) -> str:
        if not obj.layout:
            return "not planned yet"
        return format_html("<pre>{}</pre>", json.dumps(obj.layout, indent=2))

    date_hierarchy = "release_date"
    live_panel_template = "admin/releases/releaseversion/live.html"

    def live_context(self, obj: ReleaseVersion) -> dict[str, Any]:
        return controlroom.release_panel(obj)

    def get_queryset(self, request: HttpRequest):
        from django.db.models import Count

        return super().get_queryset(request).annotate(artifact_total=Count("artifacts"))

    @admin.display(description="commit")
    def commit_short(self, obj: ReleaseVersion) -> str:
        return obj.commit_sha[:12]

    @admin.display(description="artifacts", ordering="artifact_total")
    def artifact_count(self, obj: ReleaseVersion) -> int:
        return obj.artifact_total

    def get_inline_instances(self, request: HttpRequest, obj: Any = None):
        instances = super().get_inline_instances(request, obj)
        if self.is_final(obj):
            for inline in instances:
                inline.readonly_fields = inline.fields or ()
                inline.can_delete = False
                inline.max_num = 0
        return instances

    # Withdraw and Restore (releases.admin.withdrawal).
    def get_urls(self):
        return [*withdrawal_urls(self), *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        obj = self.get_object(request, object_id) if request.method == "GET" else None
        if obj is not None and self.has_view_or_change_permission(request, obj):
            extra_context = {**(extra_context or {}), **withdrawal_context(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ReleaseArtifact)
class ReleaseArtifactAdmin(admin.ModelAdmin):
    list_display = ("release", "type", "uri", "checksum_short", "size")
    list_filter = ("type",)
    search_fields = ("uri", "checksum", "release__version")
    raw_id_fields = ("release", "docker_image", "helm_chart")
    list_select_related = ("release",)

    @admin.display(description="checksum")
    def checksum_short(self, obj: ReleaseArtifact) -> str:
        return short_digest(obj.checksum)

    def is_published(self, obj: Any) -> bool:
        return obj is not None and obj.release.state == ReleaseState.PUBLISHED

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        if self.is_published(obj):
            return [f.name for f in self.model._meta.fields]
        return super().get_readonly_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_published(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_published(obj) and super().has_delete_permission(request, obj)
