"""Every entry point withdraws and restores through the same use case, with the same refusals:
the API (token or a user with the permission), the admin's buttons, ``manage.py withdraw``; and
what follows: the announcement (signed webhook, e-mail), the control room, the audit's ``latest``."""

from __future__ import annotations

import hashlib
import hmac
import io
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from releases.adapters.notifications import announce_withdrawal
from releases.choices import ReleaseState
from releases.models import ApiToken, ReleaseVersion, ReleaseWithdrawal
from releases.pipelines.audit import highest_published_images
from releases.trust.withdrawal import WithdrawalConflict, withdraw_release
from tests.audit.test_audit_runs import WebhookReceiver
from tests.fixtures.factories import make_published_set, make_release

pytestmark = pytest.mark.django_db


def published(version: str) -> ReleaseVersion:
    release, *_ = make_published_set(version)
    ReleaseVersion.objects.filter(pk=release.pk).update(state=ReleaseState.PUBLISHED, published_at=timezone.now())
    release.refresh_from_db()
    return release


def token_client(scope: str) -> APIClient:
    token = ApiToken(name=f"ci-{scope}", scope=scope)
    key = token.issue()
    token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def person(*codenames: str, staff: bool = True) -> User:
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="releases", codename__in=codenames))
    return user


def session(user: User, cls=Client):
    client = cls()
    client.force_login(user)
    return client


# The API ----------------------------------------------------------------------------------------
def test_withdrawing_needs_a_write_token_or_the_withdraw_permission():
    published("1.0.0")
    body = {"reason": "bad"}

    read_token = token_client("read").post("/api/v1/releases/1.0.0/withdraw/", body, format="json")
    staff_only = session(person("change_releaseversion"), APIClient).post(
        "/api/v1/releases/1.0.0/withdraw/", body, format="json"
    )
    anonymous = APIClient().post("/api/v1/releases/1.0.0/withdraw/", body, format="json")
    allowed = session(person("withdraw_releaseversion"), APIClient).post(
        "/api/v1/releases/1.0.0/withdraw/", body, format="json"
    )

    assert (read_token.status_code, staff_only.status_code) == (403, 403)
    assert anonymous.status_code in (401, 403)
    assert allowed.status_code == 200, allowed.json()
    assert ReleaseWithdrawal.objects.get().actor == "u1"


def test_refusals_say_what_to_do():
    writer = token_client("write")
    make_release("2.0.0")
    published("1.0.0")

    missing_reason = writer.post("/api/v1/releases/1.0.0/withdraw/", {}, format="json")
    unknown = writer.post("/api/v1/releases/9.9.9/withdraw/", {"reason": "x"}, format="json")
    draft = writer.post("/api/v1/releases/2.0.0/withdraw/", {"reason": "x"}, format="json")
    restore_live = writer.post("/api/v1/releases/1.0.0/restore/", {"reason": "x"}, format="json")

    assert missing_reason.status_code == 400 and "reason" in missing_reason.json()
    assert unknown.status_code == 404 and "no release 9.9.9" in unknown.json()["detail"]
    assert draft.status_code == 409 and "is draft; only a published release" in draft.json()["detail"]
    assert restore_live.status_code == 409 and "not withdrawn" in restore_live.json()["detail"]
    assert not ReleaseWithdrawal.objects.exists()


def test_the_release_list_says_which_are_withdrawn_in_a_constant_number_of_queries(django_assert_max_num_queries):
    writer = token_client("write")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        published(version)
    withdraw_release("1.1.0", reason="broken migrations", actor="alice")
    with django_assert_max_num_queries(8):
        few = writer.get("/api/v1/releases/?ordering=version").json()["results"]
    for version in ("1.3.0", "1.4.0", "1.5.0"):
        published(version)
    withdraw_release("1.4.0", reason="again", actor="bob")
    with django_assert_max_num_queries(8):
        many = writer.get("/api/v1/releases/?ordering=version").json()["results"]

    assert [r["withdrawal"] and r["withdrawal"]["reason"] for r in few] == [None, "broken migrations", None]
    assert [r["version"] for r in many if r["withdrawal"]] == ["1.1.0", "1.4.0"]
    assert writer.get("/api/v1/releases/latest/").json()["version"] == "1.5.0"


# The admin --------------------------------------------------------------------------------------
def test_the_admin_withdraws_and_restores_with_a_reason_through_the_same_use_case():
    release = published("1.0.0")
    client = session(person("view_releaseversion", "withdraw_releaseversion"))
    page = reverse("admin:releases_releaseversion_change", args=[release.pk])
    withdraw = reverse("admin:releases_releaseversion_withdraw", args=[release.pk])
    restore = reverse("admin:releases_releaseversion_restore", args=[release.pk])

    before = client.get(page).content.decode()
    blank = client.post(withdraw, {"reason": " "}, follow=True).content.decode()
    done = client.post(withdraw, {"reason": "pulls a bad base image"}, follow=True).content.decode()
    twice = client.post(withdraw, {"reason": "again"}, follow=True).content.decode()

    assert 'value="Withdraw"' in before and withdraw in before
    assert "Withdraw refused: a reason is required" in blank
    assert "Release 1.0.0 withdrawn" in done and "pulls a bad base image" in done and 'value="Restore"' in done
    assert "Withdraw refused: release 1.0.0 is already withdrawn" in twice
    record = ReleaseWithdrawal.objects.get()
    assert (record.actor, record.reason) == ("u0", "pulls a bad base image")

    restored = client.post(restore, {"reason": "false alarm"}, follow=True).content.decode()
    assert "Release 1.0.0 restored" in restored
    assert list(ReleaseWithdrawal.objects.values_list("action", flat=True)) == ["withdraw", "restore"]


def test_the_admin_offers_no_button_and_refuses_the_post_without_the_permission():
    release = published("1.0.0")
    client = session(person("view_releaseversion", "change_releaseversion"))

    page = client.get(reverse("admin:releases_releaseversion_change", args=[release.pk])).content.decode()
    post = client.post(reverse("admin:releases_releaseversion_withdraw", args=[release.pk]), {"reason": "x"})

    assert 'value="Withdraw"' not in page
    assert post.status_code == 403
    assert not ReleaseWithdrawal.objects.exists()


def test_the_control_room_shows_withdrawn_releases():
    published("1.0.0")
    published("1.1.0")
    withdraw_release("1.1.0", reason="memory leak under load", actor="alice")
    client = session(User.objects.create_superuser("admin", "a@example.com", "pw"))

    overview = client.get(reverse("admin:index")).content.decode()

    assert 'data-withdrawn="1.1.0"' in overview and "memory leak under load" in overview
    assert 'data-withdrawn="1.0.0"' not in overview


# The command ------------------------------------------------------------------------------------
def test_manage_py_withdraw_records_who_and_refuses_out_of_turn():
    published("1.0.0")
    out = io.StringIO()

    call_command("withdraw", "1.0.0", reason="CVE-2026-2", by="oncall", stdout=out)
    with pytest.raises(CommandError, match="already withdrawn"):
        call_command("withdraw", "1.0.0", reason="again", stdout=out)
    call_command("withdraw", "1.0.0", reason="patched upstream", restore=True, stdout=out)

    assert "release 1.0.0 withdrawn" in out.getvalue() and "release 1.0.0 restored" in out.getvalue()
    assert list(ReleaseWithdrawal.objects.values_list("actor", "action")) == [
        ("oncall", "withdraw"),
        ("manage.py withdraw", "restore"),
    ]


def test_concurrent_refusal_is_a_conflict_not_a_database_error():
    published("1.0.0")
    withdraw_release("1.0.0", reason="first", actor="a")
    with pytest.raises(WithdrawalConflict, match="already withdrawn .*first"):
        withdraw_release("1.0.0", reason="second", actor="b")


# What follows -----------------------------------------------------------------------------------
def test_a_withdrawal_is_announced_by_signed_webhook_and_e_mail(settings):
    receiver = WebhookReceiver()
    settings.AUDIT_WEBHOOK_URL, settings.AUDIT_WEBHOOK_SECRET = receiver.url, "audit-secret"
    settings.ADMINS = [("Ops", "ops@example.com")]
    published("1.0.0")
    record = withdraw_release("1.0.0", reason="bad chart defaults", actor="alice")

    assert announce_withdrawal(record)
    receiver.server.shutdown()

    ((body, signature, timestamp),) = receiver.calls
    expected = "sha256=" + hmac.new(b"audit-secret", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    payload = json.loads(body)
    assert payload["event"] == "release.withdrawn"
    assert payload["release"] | {"at": None} == {
        "version": "1.0.0",
        "action": "withdraw",
        "reason": "bad chart defaults",
        "by": "alice",
        "at": None,
    }
    (message,) = mail.outbox
    assert "release 1.0.0 withdrawn" in message.subject and "bad chart defaults" in message.body


def test_the_audit_expects_latest_at_the_newest_release_not_withdrawn_and_keeps_auditing_the_withdrawn(settings):
    host = settings.REGISTRY_NAMESPACE.split("/", 1)[0]
    published("1.0.0")
    published("1.1.0")
    withdraw_release("1.1.0", reason="bad", actor="alice")

    expected = {repository: pk for pk, repository, _ in highest_published_images(host)}

    from releases.models import DockerImage

    assert {DockerImage.objects.get(pk=pk).tag for pk in expected.values()} == {"1.0.0"}
    assert DockerImage.objects.immutable_tags().filter(tag="1.1.0").count() == 2  # still audited as published


def test_an_announcement_the_webhook_did_not_take_is_retried_and_the_e_mail_goes_once(settings):
    from celery.exceptions import Retry

    from releases.tasks import announce_withdrawal as announce_task

    settings.AUDIT_WEBHOOK_URL, settings.AUDIT_WEBHOOK_SECRET = "http://127.0.0.1:9/nobody-listens", "s"
    settings.ADMINS = [("Ops", "ops@example.com")]
    published("1.0.0")
    record = withdraw_release("1.0.0", reason="bad", actor="alice")

    # Called directly, a task's retry raises instead of enqueueing the next attempt.
    with pytest.raises(Retry):
        announce_task(record.pk)
    announce_task.push_request(retries=announce_task.max_retries)
    try:
        last = announce_task(record.pk)
    finally:
        announce_task.pop_request()

    assert last == "not sent"
    assert len(mail.outbox) == 1 and "release 1.0.0 withdrawn" in mail.outbox[0].subject
