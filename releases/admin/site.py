"""The admin site, with the control room as its front page: the overview of recent releases (and
its JSON twin the page polls while work runs). ``releases.apps.RegistryAdminConfig`` makes it the
default ``admin.site``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import path

from releases.admin import controlroom

OVERVIEW_PERMISSION = "releases.view_releaseversion"


class ControlRoomAdminSite(admin.AdminSite):
    site_header = "Release registry"
    site_title = "Release registry"
    index_title = "Control room"

    def get_urls(self):
        live = path("overview/live/", self.admin_view(self.overview_live), name="overview_live")
        return [live, *super().get_urls()]

    def may_see_overview(self, request: HttpRequest) -> bool:
        # Staff alone grants nothing: the overview shows releases, so it needs their view permission.
        return request.user.has_perm(OVERVIEW_PERMISSION) or request.user.has_perm("releases.change_releaseversion")

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        if self.may_see_overview(request):
            context["overview"] = controlroom.overview()
        return super().index(request, context)

    def overview_live(self, request: HttpRequest) -> JsonResponse:
        """The overview's panel, re-rendered: ``{"active": bool, "html": "..."}`` for the page's poller."""
        if not self.may_see_overview(request):
            refusal = "viewing releases needs the 'Can view release version' permission"
            return JsonResponse({"error": refusal}, status=403)
        overview = controlroom.overview()
        html = render_to_string("admin/releases/overview_panel.html", {"overview": overview}, request=request)
        response = JsonResponse({"active": overview["active"], "html": html})
        response["Cache-Control"] = "no-store"
        return response
