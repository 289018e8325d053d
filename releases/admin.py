"""Admin screens. They refuse what the models refuse (ModelForm runs ``full_clean``), drive work
only through the use cases in ``services`` (the same the API calls), and keep published rows
read-only."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django_fsm.admin import FSMAdminMixin

from . import controlroom, services
from .build_record_html import build_steps_html, stage_bases_html
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


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def copy_button(text: str) -> str:
    return format_html('<button type="button" class="button cr-copy" data-copy="{}">copy</button>', text)


def platform_digests_html(platform_digests: dict, repository: str, index_digest: str) -> str:
    """Each platform's manifest digest, pinned reference and a copy button; the index first."""
    rows = []
    if index_digest:
        rows.append(("index (all platforms)", index_digest, ""))
    for platform, entry in sorted((platform_digests or {}).items()):
        # The push records per platform {"digest", "size", "os", "architecture", ...}; older rows a bare digest.
        digest = entry.get("digest", "") if isinstance(entry, dict) else str(entry)
        size = entry.get("size") if isinstance(entry, dict) else None
        rows.append((platform, digest, f"{size:,} bytes" if isinstance(size, int) else ""))
    if not rows:
        return "— (recorded by the push)"
    body = format_html_join(
        "",
        "<tr><td>{}</td><td><code>{}</code>{}</td><td><code>{}</code>{}</td><td>{}</td></tr>",
        (
            (
                platform,
                digest,
                copy_button(digest),
                f"{repository}@{digest}",
                copy_button(f"{repository}@{digest}"),
                size,
            )
            for platform, digest, size in rows
        ),
    )
    return format_html(
        '<table class="cr-table cr-platforms"><thead><tr><th>platform</th><th>digest</th><th>pull by digest</th>'
        "<th>size</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def scan_findings_html(findings: list) -> str:
    """The scan's findings, most severe first, with a count per severity."""
    if not findings:
        return "none"
    rows = sorted(
        (f for f in findings if isinstance(f, dict)),
        key=lambda f: (SEVERITY_ORDER.get(str(f.get("severity", "")).lower(), 9), str(f.get("check", ""))),
    )
    counts: dict[str, int] = {}
    for finding in rows:
        severity = str(finding.get("severity", "unknown")).lower()
        counts[severity] = counts.get(severity, 0) + 1
    summary = format_html_join(
        " ", '<span class="cr-badge cr-severity-{}">{} {}</span>', ((k, k, v) for k, v in counts.items())
    )
    body = format_html_join(
        "",
        '<tr data-severity="{}"><td><span class="cr-badge cr-severity-{}">{}</span></td>'
        "<td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
        (
            (
                str(f.get("severity", "")).lower(),
                str(f.get("severity", "")).lower(),
                f.get("severity", ""),
                f.get("check", ""),
                f.get("path", "") or f.get("platform", ""),
                f.get("message", ""),
            )
            for f in rows
        ),
    )
    return format_html(
        '<p>{}</p><table class="cr-table cr-scan"><thead><tr><th>severity</th><th>check</th><th>where</th>'
        "<th>message</th></tr></thead><tbody>{}</tbody></table>",
        summary,
        body,
    )


def key_value_html(values: dict, *, empty: str) -> str:
    if not values:
        return empty
    body = format_html_join(
        "", "<tr><th><code>{}</code></th><td>{}</td></tr>", sorted((str(k), str(v)) for k, v in values.items())
    )
    return format_html('<table class="cr-table cr-labels"><tbody>{}</tbody></table>', body)


def environment_html(variables) -> str:
    """The image's environment variables; a secret's value is never shown, only that it is set."""
    rows = []
    for variable in variables:
        if variable.secret:
            value = format_html("<em>{}</em>", "hidden (secret)" if variable.default_value else "— (secret)")
        else:
            value = format_html("<code>{}</code>", variable.default_value or "—")
        rows.append((variable.name, variable.scope, "yes" if variable.required else "no", value))
    if not rows:
        return "none"
    body = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
    return format_html(
        '<table class="cr-table cr-env"><thead><tr><th>name</th><th>scope</th><th>required</th><th>default</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        body,
    )


def signing_html(status: dict) -> str:
    return format_html('<span class="{}">{}</span>', "cr-signed" if status["signed"] else "cr-unsigned", status["text"])


class StateTransitionInline(GenericTabularInline):
    model = StateTransition
    extra = 0
    can_delete = False
    fields = ("at", "transition", "source", "target", "actor", "task", "reason")
    readonly_fields = fields
    verbose_name_plural = "state history"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StalledFilter(admin.SimpleListFilter):
    """Active rows with no transition or progress report for ``STALLED_AFTER_MINUTES``."""

    title = "stalled"
    parameter_name = "stalled"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", f"no progress for {settings.STALLED_AFTER_MINUTES} min"), ("no", "moving or ended")]

    def queryset(self, request: HttpRequest, queryset):
        if self.value() == "yes":
            return queryset.stalled()
        if self.value() == "no":
            return queryset.exclude(pk__in=queryset.stalled().values("pk"))
        return queryset


def stalled_column(obj: Any) -> str:
    """ "since 14:02 (47 min), re-enqueued 1x" for a stalled row; "—" otherwise."""
    since = obj.stalled_since
    if since is None:
        return "—"
    minutes = int((timezone.now() - since).total_seconds() // 60)
    requeued = f", re-enqueued {obj.stall_requeues}×" if obj.stall_requeues else ""
    return f"since {timezone.localtime(since):%Y-%m-%d %H:%M} ({minutes} min){requeued}"


class TransitionAdmin(FSMAdminMixin, admin.ModelAdmin):
    """Shows buttons only for transitions a person may fire (``custom={"admin": True}``); each button
    runs the use case of ``transition_actions`` (which plans and enqueues, like the API)."""

    fsm_fields = ["state"]
    fsm_default_disallow_transition = False

    @admin.display(description="stalled", ordering="last_progress_at")
    def stalled(self, obj: Any) -> str:
        return stalled_column(obj)

    final_states: tuple[str, ...] = ()
    inlines: list = [StateTransitionInline]
    #: transition name -> use case ``(pk, *, actor) -> row``
    transition_actions: dict[str, Callable[..., Any]] = {}

    def may_fire(self, request: HttpRequest, obj: Any, transition_name: str) -> bool:
        """A person may fire a transition offered to people, on a row they may change (the same
        ``change`` permission the API's publish and retry need)."""
        return transition_name in self.transition_actions and self.has_change_permission(request, obj)

    def _get_fsm_extra_context(self, *, request: HttpRequest, obj: Any):
        # Buttons only for what this user may fire: a view-only user sees none.
        if obj is None or not self.has_change_permission(request, obj):
            return
        for block in super()._get_fsm_extra_context(request=request, obj=obj):
            block.available_transitions = [t for t in block.available_transitions if t.name in self.transition_actions]
            if block.available_transitions:
                yield block

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        transition_name = request.POST.get(self.fsm_post_param)
        if transition_name and transition_name not in self.transition_actions:
            # Refused before django-fsm looks the name up: any attribute name may be posted.
            self.message_user(request, f"{transition_name} is not something a person can do here", messages.ERROR)
            return redirect(request.path)
        return super().response_change(request, obj)

    def fsm_transition_view(self, request: HttpRequest, object_id: str, transition_name: str, **kwargs: Any):
        """django-fsm-2's form URL (``<pk>/transition/<name>/``): refused unless the user may fire it."""
        obj = self.get_object(request, object_id)
        if obj is None or not self.may_fire(request, obj, transition_name):
            raise PermissionDenied(f"{transition_name} is not something you can do here")
        return super().fsm_transition_view(request, object_id, transition_name, **kwargs)

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None) -> bool:
        action = self.transition_actions.get(transition_name)
        if action is None:
            self.message_user(request, f"{transition_name} is not something a person can do here", messages.ERROR)
            return False
        if not self.may_fire(request, obj, transition_name):
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

    #: Raw fields that a structured display (a table) replaces once the row is final.
    shown_as_tables: tuple[str, ...] = ()

    def get_exclude(self, request: HttpRequest, obj: Any = None):
        exclude = list(super().get_exclude(request, obj) or ())
        if self.is_final(obj):
            exclude += [name for name in self.shown_as_tables if name not in exclude]
        return exclude or None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self.is_final(obj):
            hidden = {*(self.get_exclude(request, obj) or ()), *readonly}
            readonly += [f.name for f in self.model._meta.fields if f.editable and f.name not in hidden]
            readonly += [f.name for f in self.model._meta.many_to_many if f.name not in hidden]
        return readonly

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A final (published, available, indexed) row cannot change: its page is a view with no
        Save buttons, and a POST to it is refused (403) before anything is read from the form."""
        return not self.is_final(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_final(obj) and super().has_delete_permission(request, obj)

    # Live panel: the top of the change page, re-rendered by controlroom.js while work runs.
    change_form_template = "admin/releases/live_change_form.html"
    live_panel_template = ""

    def live_context(self, obj: Any) -> dict[str, Any]:
        return {"active": obj.is_active}

    def get_urls(self):
        opts = self.model._meta
        live = path(
            "<path:object_id>/live/",
            self.admin_site.admin_view(self.live_view),
            name=f"{opts.app_label}_{opts.model_name}_live",
        )
        return [live, *super().get_urls()]

    def live_url(self, obj: Any) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_live", args=[obj.pk])

    def live_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """``{"active": bool, "state": str, "html": "..."}``: the panel, as the change page shows it."""
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(f"no {self.model._meta.verbose_name} {object_id}")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied(f"viewing this needs the 'Can view {self.model._meta.verbose_name}' permission")
        context = {**self.live_context(obj), "rendered_state": request.GET.get("state", obj.state)}
        html = render_to_string(self.live_panel_template, context, request=request)
        response = JsonResponse({"active": context["active"], "state": obj.state, "html": html})
        response["Cache-Control"] = "no-store"
        return response

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id) if request.method == "GET" else None
        if obj is not None and self.live_panel_template and self.has_view_or_change_permission(request, obj):
            extra_context.update(
                self.live_context(obj),
                live_panel_template=self.live_panel_template,
                live_url=self.live_url(obj),
                rendered_state=obj.state,
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(DockerImage)
class DockerImageAdmin(TransitionAdmin):
    final_states = (ImageState.AVAILABLE,)
    transition_actions = {"retry": services.retry_image, "fail": partial(services.fail_work, DockerImage)}
    list_display = (
        "name",
        "tag",
        "state",
        "progress",
        "stalled",
        "digest_short",
        "architectures",
        "size",
        "build_date",
        "signed",
    )
    list_filter = ("state", StalledFilter, "name")
    search_fields = ("name", "tag", "digest", "base_image")
    readonly_fields = (
        "digest",
        "size",
        "build_date",
        "signing",
        "platform_digests_table",
        "stage_bases_table",
        "build_steps_table",
        "scan_findings_table",
        "labels_table",
        "environment_table",
        "progress",
        "failure_reason",
        "component",
        "build_args",
        "signed_with",
        "signatures",
        "provenance",
        "last_progress_at",
        "stall_requeues",
        "full_build_log",
    )
    # Written by the pipeline only; shown as tables and the log panel instead of raw JSON.
    exclude = ("platform_digests", "scan_findings", "build_log", "stage_bases", "build_steps")
    shown_as_tables = ("labels",)
    filter_horizontal = ("environment_variables",)
    live_panel_template = "admin/releases/dockerimage/live.html"

    def live_context(self, obj: DockerImage) -> dict[str, Any]:
        return controlroom.image_panel(obj)

    @admin.display(description="signature")
    def signing(self, obj: DockerImage) -> str:
        return signing_html(controlroom.signing_status([obj]))

    @admin.display(description="platform digests")
    def platform_digests_table(self, obj: DockerImage) -> str:
        return platform_digests_html(obj.platform_digests, obj.repository, obj.digest)

    @admin.display(description="stage bases")
    def stage_bases_table(self, obj: DockerImage) -> str:
        return stage_bases_html(obj.stage_bases)

    @admin.display(description="build steps")
    def build_steps_table(self, obj: DockerImage) -> str:
        return build_steps_html(obj.build_steps)

    @admin.display(description="scan findings")
    def scan_findings_table(self, obj: DockerImage) -> str:
        return scan_findings_html(obj.scan_findings)

    @admin.display(description="labels")
    def labels_table(self, obj: DockerImage) -> str:
        return key_value_html(obj.labels, empty="no labels")

    @admin.display(description="environment variables")
    def environment_table(self, obj: DockerImage) -> str:
        return environment_html(obj.environment_variables.all() if obj.pk else [])

    @admin.display(description="build log")
    def full_build_log(self, obj: DockerImage) -> str:
        if not obj.build_log:
            return "—"
        lines = obj.build_log.count("\n") + 1
        return format_html(
            '<details><summary>all {} lines</summary><pre class="cr-log">{}</pre></details>', lines, obj.build_log
        )

    @admin.display(description="signed", boolean=True)
    def signed(self, obj: DockerImage) -> bool:
        return obj.is_signed

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
    readonly_fields = ("locked_version", "archive_digest", "lock_digest")  # what validation found in Chart.lock


@admin.register(HelmChart)
class HelmChartAdmin(TransitionAdmin):
    final_states = (ChartState.INDEXED,)
    transition_actions = {"retry": services.retry_chart, "reject": partial(services.fail_work, HelmChart)}
    list_display = (
        "name",
        "chart_version",
        "app_version",
        "state",
        "stalled",
        "digest_short",
        "created",
        "signed",
    )
    list_filter = ("state", StalledFilter, "name")
    search_fields = ("name", "chart_version", "app_version", "digest")
    readonly_fields = (
        "digest",
        "size",
        "progress",
        "problems",
        "warnings",
        "image_pins",
        "shown_values",
        "chart_metadata",
        "last_progress_at",
        "stall_requeues",
        "signed_with",
        "signatures",
    )
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

    @admin.display(description="signed", boolean=True)
    def signed(self, obj: HelmChart) -> bool:
        return obj.is_signed

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

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # ?default_value__startswith= would answer, row count by row count, what a secret starts with.
        if lookup.partition("__")[0] == "default_value":
            return False
        return super().lookup_allowed(lookup, value, request)

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
            # Kept on the request only: the page answering this POST shows it, nothing stores it.
            request.issued_api_token = obj.issue()
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None):
        """Show the new token in the answer to the POST that created it: not in a message (the
        messages cookie), not in the session, never again. Not cached by browsers or proxies."""
        key = getattr(request, "issued_api_token", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/releases/apitoken/issued.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "token": obj,
                "key": key,
                "title": f"API token {obj.name}",
            },
        )
        response["Cache-Control"] = "no-store"
        return response


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
