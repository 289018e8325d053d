"""Admin screens. They refuse what the models refuse (ModelForm runs ``full_clean``), drive work
only through the use cases in ``services`` (the same the API calls), and keep published rows
read-only."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html
from django_fsm.admin import FSMAdminMixin

from . import services
from .charts import mask_secret_values
from .choices import ChartState, ImageState, ReleaseState
from .models import (
    ApiToken,
    AuditFinding,
    AuditRun,
    ChartDependency,
    DockerImage,
    EnvironmentVariable,
    GitHubDelivery,
    HelmChart,
    ReleaseArtifact,
    ReleaseVersion,
    StateTransition,
)
from .transitions import TransitionRefused


def short_digest(digest: str) -> str:
    return f"{digest[:19]}…" if digest else "—"


class StateTransitionInline(GenericTabularInline):
    model = StateTransition
    extra = 0
    can_delete = False
    fields = ("at", "transition", "source", "target", "actor", "task", "reason")
    readonly_fields = fields
    verbose_name_plural = "state history"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TransitionAdmin(FSMAdminMixin, admin.ModelAdmin):
    """Shows buttons only for transitions a person may fire (``custom={"admin": True}``); each button
    runs the use case of ``transition_actions`` (which plans and enqueues, like the API)."""

    fsm_fields = ["state"]
    fsm_default_disallow_transition = False
    final_states: tuple[str, ...] = ()
    inlines: list = [StateTransitionInline]
    #: transition name -> use case ``(pk, *, actor) -> row``
    transition_actions: dict[str, Callable[..., Any]] = {}

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None) -> bool:
        action = self.transition_actions.get(transition_name)
        if action is None:
            self.message_user(request, f"{transition_name} is not something a person can do here", messages.ERROR)
            return False
        if not self.has_change_permission(request, obj):
            self.message_user(request, f"{transition_name} refused: you may not change this", messages.ERROR)
            return False
        try:
            action(obj.pk, actor=request.user)
        except TransitionRefused as refused:
            self.message_user(request, f"{transition_name} refused: {'; '.join(refused.reasons)}", messages.ERROR)
            return False
        except ValidationError as invalid:
            self.message_user(request, f"{transition_name} refused: {'; '.join(invalid.messages)}", messages.ERROR)
            return False
        self.message_user(request, f"{transition_name} done", messages.SUCCESS)
        return True

    def is_final(self, obj: Any) -> bool:
        return obj is not None and obj.state in self.final_states

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self.is_final(obj):
            readonly += [f.name for f in self.model._meta.fields if f.name not in readonly]
            readonly += [f.name for f in self.model._meta.many_to_many if f.name not in readonly]
        return readonly

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_final(obj) and super().has_delete_permission(request, obj)


@admin.register(DockerImage)
class DockerImageAdmin(TransitionAdmin):
    final_states = (ImageState.AVAILABLE,)
    transition_actions = {"retry": services.retry_image, "fail": partial(services.fail_work, DockerImage)}
    list_display = ("name", "tag", "state", "progress", "digest_short", "architectures", "size", "build_date")
    list_filter = ("state", "name")
    search_fields = ("name", "tag", "digest", "base_image")
    readonly_fields = (
        "digest",
        "size",
        "build_date",
        "platform_digests",
        "progress",
        "build_log",
        "scan_findings",
        "failure_reason",
        "component",
        "build_args",
    )
    filter_horizontal = ("environment_variables",)

    @admin.display(description="digest")
    def digest_short(self, obj: DockerImage) -> str:
        return short_digest(obj.digest)

    @admin.display(description="architectures")
    def architectures(self, obj: DockerImage) -> str:
        return ", ".join(obj.architecture or [])

    def is_final(self, obj: Any) -> bool:
        return obj is not None and obj.tag_is_immutable


class ChartDependencyInline(admin.TabularInline):
    model = ChartDependency
    extra = 0


@admin.register(HelmChart)
class HelmChartAdmin(TransitionAdmin):
    final_states = (ChartState.INDEXED,)
    transition_actions = {"retry": services.retry_chart, "reject": partial(services.fail_work, HelmChart)}
    list_display = ("name", "chart_version", "app_version", "state", "digest_short", "created")
    list_filter = ("state", "name")
    search_fields = ("name", "chart_version", "app_version", "digest")
    readonly_fields = ("digest", "size", "progress", "problems", "warnings", "image_pins", "shown_values")
    exclude = ("values",)
    filter_horizontal = ("environment_variables",)
    inlines = [ChartDependencyInline, StateTransitionInline]

    @admin.display(description="values as published: pinned to the images' digests (secret variables masked)")
    def shown_values(self, obj: HelmChart) -> str:
        secret_names = set(EnvironmentVariable.objects.filter(secret=True).values_list("name", flat=True))
        return format_html("<pre>{}</pre>", json.dumps(mask_secret_values(obj.values, secret_names), indent=2))

    @admin.display(description="digest")
    def digest_short(self, obj: HelmChart) -> str:
        return short_digest(obj.digest)

    def get_inlines(self, request: HttpRequest, obj: Any = None):
        if self.is_final(obj):
            return [StateTransitionInline]
        return self.inlines


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
        "failed_artifact",
    )
    list_filter = ("state",)
    search_fields = ("version", "commit_sha", "changelog", "release_notes")
    readonly_fields = ("failure_reason", "failed_artifact", "published_at", "shown_layout")
    inlines = [ReleaseArtifactInline, StateTransitionInline]

    @admin.display(description="layout (.release-registry.yaml with the defaults filled in)")
    def shown_layout(self, obj: ReleaseVersion) -> str:
        if not obj.layout:
            return "not planned yet"
        return format_html("<pre>{}</pre>", json.dumps(obj.layout, indent=2))

    date_hierarchy = "release_date"

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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_published(obj) and super().has_delete_permission(request, obj)


class EnvironmentVariableForm(forms.ModelForm):
    """Never renders a secret's value; an empty submission keeps the stored one."""

    class Meta:
        model = EnvironmentVariable
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.secret:
            self.fields["default_value"].widget = forms.PasswordInput(render_value=False)
            self.fields["default_value"].help_text = "Secret: the stored value is hidden; leave empty to keep it."
            self.initial["default_value"] = ""

    def clean_default_value(self) -> str:
        value = self.cleaned_data.get("default_value", "")
        if not value and self.instance.pk and self.instance.secret:
            return EnvironmentVariable.objects.get(pk=self.instance.pk).default_value
        return value


@admin.register(EnvironmentVariable)
class EnvironmentVariableAdmin(admin.ModelAdmin):
    form = EnvironmentVariableForm
    list_display = ("name", "scope", "required", "secret", "shown_default", "description")
    list_filter = ("scope", "required", "secret")
    search_fields = ("name", "description")

    @admin.display(description="default value")
    def shown_default(self, obj: EnvironmentVariable) -> str:
        if obj.secret:
            return format_html("<em>{}</em>", "hidden" if obj.default_value else "—")
        return obj.default_value or "—"


@admin.register(StateTransition)
class StateTransitionAdmin(admin.ModelAdmin):
    list_display = ("at", "content_type", "object_id", "transition", "source", "target", "actor", "task")
    list_filter = ("content_type", "target")
    search_fields = ("reason", "task")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Creating a token shows its secret once; only its hash is stored."""

    list_display = ("name", "scope", "prefix", "created", "last_used", "revoked")
    list_filter = ("scope", "revoked")
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created", "last_used")

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if not change:
            key = obj.issue()
            self.message_user(
                request,
                f"Token for {obj.name}: {key} — copy it now, it is not shown again. "
                f"Send it as 'Authorization: Bearer {key[:6]}…'.",
                messages.WARNING,
            )
        super().save_model(request, obj, form, change)


@admin.register(GitHubDelivery)
class GitHubDeliveryAdmin(admin.ModelAdmin):
    list_display = ("received", "event", "action", "delivery_id", "release", "outcome")
    list_filter = ("event", "action")
    search_fields = ("delivery_id", "outcome")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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

    def start_audit(self, request: HttpRequest):
        if request.method == "POST":
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
