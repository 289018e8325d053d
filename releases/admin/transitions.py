"""What every stateful admin screen shares: the transition history inline, the stalled filter,
and the transition buttons, which go through the use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django_fsm.admin import FSMAdminMixin

from releases.models import (
    StateTransition,
)
from releases.transitions import TransitionRefused


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
