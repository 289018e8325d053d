"""Withdrawing a published release, and restoring it: the use case every entry point calls (the
API's ``releases/<version>/withdraw/`` and ``restore/``, the admin's Withdraw and Restore buttons,
``manage.py withdraw``).

A withdrawal changes nothing published: the release, its artifacts, images, chart and every version
tag stay byte-identical (exact pins keep working, as PyPI's yank keeps files). It is one
``ReleaseWithdrawal`` record (who, when, why), which the database keeps append-only, and what we
point people at moves: ``releases/latest/`` and the chart repository's ``index.yaml`` skip the
release at once (the record bumps the data generations those caches key on), each image's OCI
``latest`` tag is moved by the ``align_latest_tags`` task enqueued on commit, and the webhook and
e-mail announcement goes out the same way (``announce_withdrawal``).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .. import tasks
from ..choices import ReleaseState, WithdrawalAction
from ..models import ReleaseVersion, ReleaseWithdrawal

__all__ = ["WithdrawalConflict", "actor_name", "restore_release", "withdraw_release"]


class WithdrawalConflict(Exception):
    """The release is not in a state this can apply to: not published, already withdrawn, or not
    withdrawn (for a restore). The message says which, and what to do."""


def actor_name(actor: object) -> str:
    """Who, as recorded: a person's username, ``token:<name>`` for an API token, or the text given."""
    if actor is None:
        return "an operator"
    if isinstance(actor, str):
        return actor or "an operator"
    return getattr(actor, "username", "") or str(actor)


def withdraw_release(version: str, *, reason: str, actor: object) -> ReleaseWithdrawal:
    """Withdraw the published release ``version``: record who and why, and move ``latest`` back.

    Refuses (``ValidationError`` on ``reason``) a blank reason; (``ReleaseVersion.DoesNotExist``)
    an unknown version; (``WithdrawalConflict``) a release that is not published or is already
    withdrawn.
    """
    return _record(version, WithdrawalAction.WITHDRAW, reason, actor)


def restore_release(version: str, *, reason: str, actor: object) -> ReleaseWithdrawal:
    """Undo the withdrawal of ``version`` (recorded too, with who and why); ``latest`` moves again.

    Refuses a blank reason, an unknown version, and a release that is not withdrawn.
    """
    return _record(version, WithdrawalAction.RESTORE, reason, actor)


def _record(version: str, action: str, reason: str, actor: object) -> ReleaseWithdrawal:
    reason = (reason or "").strip()
    if not reason:
        verb = "withdrawn" if action == WithdrawalAction.WITHDRAW else "restored"
        raise ValidationError(
            {"reason": [f"a reason is required: say why release {version} is {verb} (everyone who asks is told)"]}
        )
    with transaction.atomic():
        # The release row's lock orders concurrent withdrawals and restores of one release: the
        # second reads the first's record, and is told.
        release = ReleaseVersion.objects.select_for_update().only("pk", "version", "state").get(version=version)
        newest = release.withdrawals.order_by("-sequence").first()
        _refuse_out_of_turn(release, action, newest)
        try:
            with transaction.atomic():
                record = ReleaseWithdrawal.objects.create(
                    release=release,
                    sequence=(newest.sequence if newest else 0) + 1,
                    action=action,
                    reason=reason,
                    actor=actor_name(actor)[:255],
                )
        except IntegrityError as error:  # another service sharing the database, or a trigger's refusal
            raise WithdrawalConflict(f"the {action} of release {version} was refused: {error}") from error
        transaction.on_commit(lambda: tasks.align_latest_tags.delay(release.pk))
        transaction.on_commit(lambda: tasks.announce_withdrawal.delay(record.pk))
    return record


def _refuse_out_of_turn(release: ReleaseVersion, action: str, newest: ReleaseWithdrawal | None) -> None:
    withdrawn = newest is not None and newest.withdraws
    if release.state != ReleaseState.PUBLISHED:
        raise WithdrawalConflict(
            f"release {release.version} is {release.state}; only a published release can be "
            f"{'withdrawn' if action == WithdrawalAction.WITHDRAW else 'restored'}"
        )
    if action == WithdrawalAction.WITHDRAW and withdrawn:
        raise WithdrawalConflict(
            f"release {release.version} is already withdrawn (by {newest.actor} at {newest.created:%Y-%m-%d %H:%M} "
            f"UTC: {newest.reason}); restore it first if it should be withdrawn for another reason"
        )
    if action == WithdrawalAction.RESTORE and not withdrawn:
        raise WithdrawalConflict(f"release {release.version} is not withdrawn; there is nothing to restore")
