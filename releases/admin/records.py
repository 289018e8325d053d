"""Read-mostly records: state transitions, API tokens, GitHub deliveries."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from releases.models import (
    ApiToken,
    GitHubDelivery,
    StateTransition,
)


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
