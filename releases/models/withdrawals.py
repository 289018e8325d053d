"""Withdrawing a published release, and restoring it: an append-only record.

A withdrawn release stays published (its rows, artifacts and every version tag unchanged, as
PyPI's yank keeps files); what changes is what we point people at: ``releases/latest/``, each
image's OCI ``latest`` tag and the chart repository's ``index.yaml`` skip it, and admission refuses
its digests. ``releases.trust.withdrawal`` is the use case every entry point calls.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Mod, Trim
from django.db.models.lookups import Exact

from ..choices import WithdrawalAction
from .releases import ReleaseVersion


class ReleaseWithdrawal(models.Model):
    """One withdrawal or restoration of a published release: who, when, why.

    Append-only: the database refuses UPDATE and DELETE of these rows (``releases.database.withdrawals``).
    A release's records are numbered 1, 2, 3... (``sequence``) and alternate: odd ones withdraw,
    even ones restore. So the release is withdrawn exactly when its newest record is a withdrawal,
    and the database refuses withdrawing a withdrawn release or restoring one that is not
    withdrawn: the unique ``(release, sequence)`` and the parity check refuse a record out of turn,
    and a trigger refuses a gap in the numbering and a release that is not published. The use case
    locks the release row first, so that of two concurrent withdrawals the second sees the first
    and is told so.
    """

    release = models.ForeignKey(ReleaseVersion, on_delete=models.PROTECT, related_name="withdrawals")
    sequence = models.PositiveIntegerField(help_text="1, 2, 3... per release: odd withdraws, even restores.")
    action = models.CharField(max_length=16, choices=WithdrawalAction.choices)
    reason = models.TextField(help_text="Why: shown to everyone who asks about the release.")
    actor = models.CharField(max_length=255, help_text="Who: a username, or token:<name> for an API token.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["release", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["release", "sequence"], name="withdrawal_sequence_once_per_release"),
            models.CheckConstraint(
                condition=(
                    Q(Exact(Mod("sequence", 2), 1), action=WithdrawalAction.WITHDRAW)
                    | Q(Exact(Mod("sequence", 2), 0), action=WithdrawalAction.RESTORE)
                )
                & Q(sequence__gte=1),
                name="withdrawal_alternates_with_restore",
            ),
            models.CheckConstraint(condition=~Q(Exact(Trim("reason"), "")), name="withdrawal_reason_required"),
            models.CheckConstraint(condition=~Q(actor=""), name="withdrawal_actor_required"),
        ]
        permissions = [("withdraw_releaseversion", "Can withdraw and restore a published release")]

    def __str__(self) -> str:
        return f"{self.action} of release {self.release_id} (#{self.sequence})"

    @property
    def withdraws(self) -> bool:
        return self.action == WithdrawalAction.WITHDRAW


def current_withdrawals(releases: Iterable[int]) -> dict[int, ReleaseWithdrawal]:
    """Release pk -> the withdrawal in force, for those of ``releases`` that are withdrawn now (one query)."""
    newest = ReleaseWithdrawal.objects.filter(release=OuterRef("release")).order_by("-sequence").values("sequence")[:1]
    records = ReleaseWithdrawal.objects.filter(
        release__in=list(releases), sequence=Subquery(newest), action=WithdrawalAction.WITHDRAW
    )
    return {record.release_id: record for record in records}
