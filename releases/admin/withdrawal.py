"""The release change page's Withdraw and Restore buttons: a reason field each, posted to
``<pk>/withdraw/`` or ``<pk>/restore/``, permission-checked, through the same use case as the API
(``releases.trust.withdrawal``). The page shows the withdrawal in force and every record."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from releases.choices import ReleaseState
from releases.models import ReleaseVersion, ReleaseWithdrawal
from releases.services import PERMISSION_TO
from releases.trust.withdrawal import WithdrawalConflict, restore_release, withdraw_release

PERMISSION = PERMISSION_TO["withdraw_release"]
PANEL_TEMPLATE = "admin/releases/releaseversion/withdrawal.html"


class WithdrawalForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        max_length=10_000,
        help_text="Required: told to everyone who asks about this release (API, webhook, e-mail).",
        error_messages={"required": "a reason is required: say why, everyone who asks is told"},
    )


def may_withdraw(request: HttpRequest) -> bool:
    return request.user.has_perm(PERMISSION)


def withdrawal_urls(model_admin: Any) -> list[URLPattern]:
    def view(use_case: Callable[..., ReleaseWithdrawal], verb: str):
        return model_admin.admin_site.admin_view(partial(withdrawal_view, model_admin, use_case, verb))

    return [
        path("<path:object_id>/withdraw/", view(withdraw_release, "withdraw"), name="releases_releaseversion_withdraw"),
        path("<path:object_id>/restore/", view(restore_release, "restore"), name="releases_releaseversion_restore"),
    ]


def withdrawal_view(
    model_admin: Any, use_case: Callable[..., ReleaseWithdrawal], verb: str, request: HttpRequest, object_id: str
) -> HttpResponse:
    """POST only: run the use case, say what happened, back to the change page."""
    release = model_admin.get_object(request, object_id)
    if release is None:
        raise Http404(f"no release {object_id}")
    back = redirect(reverse("admin:releases_releaseversion_change", args=[release.pk]))
    if request.method != "POST":
        return back
    if not may_withdraw(request):
        raise PermissionDenied(f"{verb} needs the 'Can withdraw and restore a published release' permission")
    form = WithdrawalForm(request.POST)
    if not form.is_valid():
        model_admin.message_user(request, f"{verb} refused: {'; '.join(form.errors['reason'])}", messages.ERROR)
        return back
    try:
        use_case(release.version, reason=form.cleaned_data["reason"], actor=request.user)
    except ValidationError as invalid:
        model_admin.message_user(request, f"{verb} refused: {'; '.join(invalid.messages)}", messages.ERROR)
    except WithdrawalConflict as conflict:
        model_admin.message_user(request, f"{verb} refused: {conflict}", messages.ERROR)
    else:
        done = "withdrawn" if verb == "withdraw" else "restored"
        model_admin.message_user(
            request,
            f"release {release.version} {done}; releases/latest/ and index.yaml already say so, "
            "each image's latest tag is being moved (see below)",
            messages.SUCCESS,
        )
    return back


def withdrawal_context(request: HttpRequest, release: ReleaseVersion) -> dict[str, Any]:
    """What the change page's withdrawal panel shows: the record in force, the history, the buttons."""
    from releases.models import LatestTag

    history = list(release.withdrawals.order_by("-sequence"))
    current = history[0] if history and history[0].withdraws else None
    repositories = set(release.images().values_list("registry", "name"))
    latest_tags = [row for row in LatestTag.objects.all() if (row.registry, row.name) in repositories]
    return {
        "withdrawal_panel_template": PANEL_TEMPLATE,
        "withdrawal": current,
        "withdrawal_history": history,
        "latest_tags": latest_tags,
        "may_withdraw": may_withdraw(request) and release.state == ReleaseState.PUBLISHED,
        "withdrawal_form": WithdrawalForm(),
        "withdraw_url": reverse("admin:releases_releaseversion_withdraw", args=[release.pk]),
        "restore_url": reverse("admin:releases_releaseversion_restore", args=[release.pk]),
    }
