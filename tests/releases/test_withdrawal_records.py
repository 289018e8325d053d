"""A withdrawal record is append-only and in turn, in the database itself (``releases.database.withdrawals``).

Proven with raw SQL on two real databases: the suite's (PostgreSQL in CI) and an in-memory SQLite
database migrated next to it, because the triggers are generated per vendor.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from releases.choices import ReleaseState, WithdrawalAction
from releases.models import ReleaseVersion, ReleaseWithdrawal, current_withdrawals
from tests.fixtures.factories import COMMIT

SQLITE = "withdrawals_sqlite"
connections.settings[SQLITE] = connections.configure_settings(
    {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
)["default"]

pytestmark = pytest.mark.django_db(databases=["default", SQLITE])

BOTH = pytest.mark.parametrize("alias", ["default", SQLITE])


def published_release(alias: str, version: str = "1.0.0", *, state: str = ReleaseState.PUBLISHED) -> ReleaseVersion:
    release = ReleaseVersion.objects.using(alias).create(version=version, commit_sha=COMMIT)
    ReleaseVersion.objects.using(alias).filter(pk=release.pk).update(state=state, published_at=timezone.now())
    return release


def insert(alias: str, release: ReleaseVersion, sequence: int, action: str, reason: str = "CVE-2026-1") -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "INSERT INTO releases_releasewithdrawal (release_id, sequence, action, reason, actor, created) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [release.pk, sequence, action, reason, "alice", timezone.now()],
        )


def refused(alias: str, sql: str, params=()) -> str:
    with pytest.raises(IntegrityError) as error, transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
    return str(error.value)


@BOTH
def test_a_withdrawal_record_cannot_be_updated_or_deleted_with_raw_sql(alias):
    release = published_release(alias)
    insert(alias, release, 1, WithdrawalAction.WITHDRAW)

    update = refused(alias, "UPDATE releases_releasewithdrawal SET reason = 'nothing happened'")
    delete = refused(alias, "DELETE FROM releases_releasewithdrawal")

    assert "append-only" in update and "update refused" in update
    assert "append-only" in delete and "delete refused" in delete
    record = ReleaseWithdrawal.objects.using(alias).get()
    assert (record.reason, record.action, record.sequence) == ("CVE-2026-1", "withdraw", 1)


@BOTH
def test_a_withdrawn_release_cannot_be_withdrawn_again_nor_a_live_one_restored(alias):
    release = published_release(alias)

    restore_first = refused(
        alias,
        "INSERT INTO releases_releasewithdrawal (release_id, sequence, action, reason, actor, created) "
        "VALUES (%s, 1, 'restore', 'r', 'alice', %s)",
        [release.pk, timezone.now()],
    )
    insert(alias, release, 1, WithdrawalAction.WITHDRAW)
    withdraw_again_same_number = refused(
        alias,
        "INSERT INTO releases_releasewithdrawal (release_id, sequence, action, reason, actor, created) "
        "VALUES (%s, 1, 'withdraw', 'r', 'alice', %s)",
        [release.pk, timezone.now()],
    )
    withdraw_again_next_number = refused(
        alias,
        "INSERT INTO releases_releasewithdrawal (release_id, sequence, action, reason, actor, created) "
        "VALUES (%s, 2, 'withdraw', 'r', 'alice', %s)",
        [release.pk, timezone.now()],
    )
    skip_ahead = refused(
        alias,
        "INSERT INTO releases_releasewithdrawal (release_id, sequence, action, reason, actor, created) "
        "VALUES (%s, 3, 'withdraw', 'r', 'alice', %s)",
        [release.pk, timezone.now()],
    )
    insert(alias, release, 2, WithdrawalAction.RESTORE)
    insert(alias, release, 3, WithdrawalAction.WITHDRAW)

    assert "withdrawal_alternates_with_restore" in restore_first or "CHECK" in restore_first
    assert withdraw_again_same_number  # unique (release, sequence)
    assert "withdrawal_alternates_with_restore" in withdraw_again_next_number or "CHECK" in withdraw_again_next_number
    assert "out of turn" in skip_ahead
    assert list(ReleaseWithdrawal.objects.using(alias).values_list("sequence", "action")) == [
        (1, "withdraw"),
        (2, "restore"),
        (3, "withdraw"),
    ]


@BOTH
def test_only_a_published_release_can_be_withdrawn(alias):
    release = published_release(alias, state=ReleaseState.FAILED)

    message = refused(
        alias,
        "INSERT INTO releases_releasewithdrawal (release_id, sequence, action, reason, actor, created) "
        "VALUES (%s, 1, 'withdraw', 'r', 'alice', %s)",
        [release.pk, timezone.now()],
    )

    assert "only a published release" in message
    assert not ReleaseWithdrawal.objects.using(alias).exists()


@BOTH
def test_a_blank_reason_is_refused(alias):
    release = published_release(alias)

    with pytest.raises(IntegrityError), transaction.atomic(using=alias):
        insert(alias, release, 1, WithdrawalAction.WITHDRAW, reason="   ")

    assert not ReleaseWithdrawal.objects.using(alias).exists()


def test_many_releases_are_answered_withdrawn_or_not_in_one_query(django_assert_num_queries):
    live, withdrawn, restored = (published_release("default", v) for v in ("1.0.0", "1.1.0", "1.2.0"))
    insert("default", withdrawn, 1, WithdrawalAction.WITHDRAW, reason="leaks the session cookie")
    insert("default", restored, 1, WithdrawalAction.WITHDRAW)
    insert("default", restored, 2, WithdrawalAction.RESTORE, reason="false alarm")

    with django_assert_num_queries(1):
        rows = {r.version: r for r in ReleaseVersion.objects.with_withdrawal()}
    with django_assert_num_queries(1):
        in_force = current_withdrawals([live.pk, withdrawn.pk, restored.pk])

    assert (rows["1.1.0"].withdrawal_action, rows["1.1.0"].withdrawal_reason) == (
        "withdraw",
        "leaks the session cookie",
    )
    assert rows["1.1.0"].withdrawal_actor == "alice" and rows["1.1.0"].withdrawal_at is not None
    assert rows["1.2.0"].withdrawal_action == "restore" and rows["1.0.0"].withdrawal_action is None
    assert set(ReleaseVersion.objects.withdrawn().values_list("version", flat=True)) == {"1.1.0"}
    assert set(ReleaseVersion.objects.not_withdrawn().values_list("version", flat=True)) == {"1.0.0", "1.2.0"}
    assert list(in_force) == [withdrawn.pk] and in_force[withdrawn.pk].reason == "leaks the session cookie"
    assert withdrawn.current_withdrawal().sequence == 1 and restored.current_withdrawal() is None


def withdrawal_triggers(alias: str) -> set[str]:
    query = (
        "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'releases_releasewithdrawal%'"
        if connections[alias].vendor == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'releases_releasewithdrawal%'"
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(query)
        return {name for (name,) in cursor.fetchall()}


# Transactional: the SQLite schema editor cannot run inside the test's transaction.
@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
@BOTH
def test_the_triggers_survive_every_migrate_and_go_with_the_table(alias):
    from django.core.management import call_command

    installed = withdrawal_triggers(alias)
    try:
        call_command("migrate", database=alias, verbosity=0)
        again = withdrawal_triggers(alias)
        call_command("migrate", "releases", "0020", database=alias, verbosity=0)
        before_0021 = withdrawal_triggers(alias)
    finally:
        call_command("migrate", database=alias, verbosity=0)

    assert installed == again and len(installed) == (1 if connections[alias].vendor == "postgresql" else 4)
    assert before_0021 == set()
    assert withdrawal_triggers(alias) == installed
