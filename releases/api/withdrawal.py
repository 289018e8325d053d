"""The API side of withdrawing and restoring a release: the request, the answer, the refusals.

``POST releases/<version>/withdraw/`` and ``restore/`` with ``{"reason": "..."}``: 200 with the
record; 400 without a reason; 404 for an unknown version; 409 when the release is not published,
already withdrawn (withdraw) or not withdrawn (restore). Writes need a write token or a user with
the ``releases.withdraw_releaseversion`` permission (``ReadOrWriteToken``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from ..models import ReleaseVersion, ReleaseWithdrawal
from ..trust.withdrawal import WithdrawalConflict
from .errors import Conflict


class WithdrawalRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        allow_blank=True,
        trim_whitespace=True,
        max_length=10_000,
        help_text="Why (required): told to everyone who asks about the release.",
    )


class WithdrawalSerializer(serializers.ModelSerializer):
    version = serializers.CharField(source="release.version")
    by = serializers.CharField(source="actor")
    at = serializers.DateTimeField(source="created")

    class Meta:
        model = ReleaseWithdrawal
        fields = ["version", "action", "sequence", "reason", "by", "at"]


def record(request, version: str, use_case: Callable[..., ReleaseWithdrawal]) -> Response:
    """Run the withdraw or restore use case for the request; refusals as 400, 404 or 409."""
    given = WithdrawalRequestSerializer(data=request.data)
    if not given.is_valid():
        raise exceptions.ValidationError(given.errors)
    try:
        withdrawal = use_case(version, reason=given.validated_data["reason"], actor=request.user)
    except DjangoValidationError as error:
        raise exceptions.ValidationError(serializers.as_serializer_error(error)) from None
    except ReleaseVersion.DoesNotExist:
        raise exceptions.NotFound(f"no release {version}") from None
    except WithdrawalConflict as conflict:
        raise Conflict(str(conflict)) from None
    return Response(WithdrawalSerializer(withdrawal).data)


def no_latest_reason() -> str:
    """Why ``releases/latest/`` has nothing to answer: nothing published yet, or all of it withdrawn."""
    newest = ReleaseVersion.objects.published().withdrawn().order_by("-version_order").first()
    if newest is None:
        return "no release is published yet"
    return (
        f"every published release is withdrawn (the newest, {newest.version}, by {newest.withdrawal_actor}: "
        f"{newest.withdrawal_reason}); restore one (POST releases/<version>/restore/) or publish a new version"
    )


def withdrawal_of(release: ReleaseVersion) -> dict | None:
    """The withdrawal in force, as the release's ``withdrawal`` field: ``None`` unless withdrawn. Reads
    the annotations of ``with_withdrawal()`` when the queryset made them (no query per release)."""
    if hasattr(release, "withdrawal_action"):
        if release.withdrawal_action != "withdraw":
            return None
        return {"reason": release.withdrawal_reason, "at": release.withdrawal_at, "by": release.withdrawal_actor}
    current = release.current_withdrawal()
    if current is None:
        return None
    return {"reason": current.reason, "at": current.created, "by": current.actor}
