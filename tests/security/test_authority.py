"""Authority: who may change what, through every entry point.

Each row of the tables is who asks (anonymous, a token of a scope, a staff member holding some
Django permissions, a signed sender of another repository...), what they ask, the answer they
must get, and what must stay unchanged when they are refused. No row may end in a 5xx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import io
import json
import time
from collections.abc import Callable

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from releases.adapters.notifications import send_webhook
from releases.choices import ImageState, ReleaseState
from releases.github.events import compute_signature
from releases.models import ApiToken, AuditFinding, DockerImage, EnvironmentVariable, GitHubDelivery, ReleaseVersion
from releases.models.encryption import ENCRYPTED_PREFIX
from tests.audit.test_audit_runs import WebhookReceiver
from tests.fixtures.factories import COMMIT, make_image, make_release
from tests.releases.test_settings import start

pytestmark = pytest.mark.django_db

SECRET_VALUE = "hunter2-very-secret-value"


def person(*permissions: str, staff: bool = True, superuser: bool = False) -> User:
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=staff, is_superuser=superuser)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="releases"))
    return user


def token_key(scope: str, *, revoked: bool = False) -> str:
    token = ApiToken(name=f"t-{scope}-{ApiToken.objects.count()}", scope=scope, revoked=revoked)
    key = token.issue()
    token.save()
    return key


# --- 1. API writes: a write token, or a session holding the use case's model permission --------

WHO: dict[str, Callable[[], APIClient]] = {}


def who(name: str):
    def register(build):
        WHO[name] = build
        return build

    return register


def session(*permissions: str, staff: bool = True, superuser: bool = False) -> APIClient:
    client = APIClient()
    client.force_login(person(*permissions, staff=staff, superuser=superuser))
    return client


def bearer(scope: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_key(scope)}")
    return client


WHO = {
    "anonymous": APIClient,
    "read token": lambda: bearer("read"),
    "write token": lambda: bearer("write"),
    "staff, no permission": lambda: session(),
    "staff, view only": lambda: session("view_releaseversion", "view_auditrun"),
    "staff, add release": lambda: session("add_releaseversion"),
    "staff, change release": lambda: session("change_releaseversion"),
    "staff, add audit run": lambda: session("add_auditrun"),
    "non-staff, add release": lambda: session("add_releaseversion", staff=False),
    "superuser": lambda: session(superuser=True),
}

RELEASE = {"version": "2.0.0", "commit_sha": COMMIT, "changelog": "## 2.0.0\n"}

API_WRITE_CASES = [
    # (who, what, expected status) -- refused rows must leave releases, states and audits unchanged
    ("anonymous", "create", 401),
    ("read token", "create", 403),
    ("staff, no permission", "create", 403),
    ("staff, view only", "create", 403),
    ("staff, change release", "create", 403),
    ("staff, add release", "create", 201),
    ("non-staff, add release", "create", 201),
    ("write token", "create", 201),
    ("superuser", "create", 201),
    ("staff, no permission", "publish", 403),
    ("staff, add release", "publish", 403),
    ("staff, view only", "publish", 403),
    ("staff, change release", "publish", 202),
    ("write token", "publish", 202),
    ("staff, no permission", "retry", 403),
    ("staff, add release", "retry", 403),
    ("staff, change release", "retry", 409),  # allowed to ask; a draft cannot be retried
    ("staff, no permission", "audit", 403),
    ("staff, view only", "audit", 403),
    ("staff, change release", "audit", 403),
    ("read token", "audit", 403),
    ("staff, add audit run", "audit", 202),
]


def api_write(client: APIClient, what: str):
    if what == "create":
        return client.post("/api/v1/releases/", RELEASE, format="json")
    if what == "audit":
        return client.post("/api/v1/audits/", format="json")
    return client.post(f"/api/v1/releases/1.0.0/{what}/", format="json")


@pytest.mark.parametrize(("who", "what", "status"), API_WRITE_CASES, ids=[f"{w}-{a}" for w, a, _ in API_WRITE_CASES])
def test_api_writes_need_a_write_token_or_the_model_permission(who, what, status, django_capture_on_commit_callbacks):
    # Given a draft release 1.0.0
    draft = make_release("1.0.0")

    # When the client asks
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        response = api_write(WHO[who](), what)

    # Then it gets the answer of the row; refused, nothing changed and nothing was enqueued
    assert response.status_code == status, response.content
    assert response.status_code < 500
    if status in (401, 403):
        assert ReleaseVersion.objects.count() == 1
        assert ReleaseVersion.objects.get(pk=draft.pk).state == ReleaseState.DRAFT
        assert not DockerImage.objects.exists()
        assert not enqueued


@pytest.mark.parametrize(
    ("public", "who", "status"),
    [
        (False, "anonymous", 401),
        (False, "staff, no permission", 200),
        (False, "read token", 200),
        (True, "anonymous", 200),
    ],
)
def test_api_reads_keep_following_api_reads_public(settings, public, who, status):
    settings.API_READS_PUBLIC = public
    assert WHO[who]().get("/api/v1/releases/").status_code == status


# --- 2. Admin transition buttons and "Run an audit now" -------------------------------------------


def admin_client(*permissions: str) -> Client:
    client = Client()
    client.force_login(person(*permissions))
    return client


VIEW_ONLY = ("view_releaseversion", "view_dockerimage", "view_auditrun")
MAY_CHANGE = ("view_releaseversion", "change_releaseversion", "view_dockerimage", "change_dockerimage")
HISTORY = "releases-statetransition-content_type-object_id"


def release_form(release: ReleaseVersion, transition: str) -> dict[str, str]:
    return {
        "_fsm_transition_to": transition,
        "version": release.version,
        "commit_sha": release.commit_sha,
        "release_date_0": "2026-11-26",
        "release_date_1": "10:00:00",
        **{f"{p}-{n}": "0" for p in ("artifacts", HISTORY) for n in ("TOTAL_FORMS", "INITIAL_FORMS")},
    }


def change_url(obj) -> str:
    return reverse(f"admin:releases_{obj._meta.model_name}_change", args=[obj.pk])


def transition_url(obj, name: str) -> str:
    return reverse(f"admin:releases_{obj._meta.model_name}_transition", args=[obj.pk, name])


def test_a_view_only_user_sees_no_transition_buttons_and_a_changer_does():
    release = make_release("1.0.0")
    assert "_fsm_transition_to" not in admin_client(*VIEW_ONLY).get(change_url(release)).content.decode()
    assert 'value="submit"' in admin_client(*MAY_CHANGE).get(change_url(release)).content.decode()


ADMIN_TRANSITION_CASES = [
    # (case, permissions, how it is posted, transition, expected status, expected state afterwards)
    ("view-only, change form", VIEW_ONLY, "form", "submit", 403, ReleaseState.DRAFT),
    ("view-only, FSM transition URL", VIEW_ONLY, "url", "submit", 403, ReleaseState.DRAFT),
    ("view-only, FSM URL, unknown name", VIEW_ONLY, "url", "no_such_transition", 403, ReleaseState.DRAFT),
    ("changer, FSM URL, unknown name", MAY_CHANGE, "url", "no_such_transition", 403, ReleaseState.DRAFT),
    ("changer, FSM URL, worker transition", MAY_CHANGE, "url", "mark_published", 403, ReleaseState.DRAFT),
    ("changer, form, a method not a transition", MAY_CHANGE, "form", "delete", 302, ReleaseState.DRAFT),
    ("changer, form, worker transition", MAY_CHANGE, "form", "start_publishing", 302, ReleaseState.DRAFT),
    ("changer, form, publish", MAY_CHANGE, "form", "submit", 302, ReleaseState.PENDING),
]


@pytest.mark.parametrize(
    ("case", "permissions", "how", "transition", "status", "state"),
    ADMIN_TRANSITION_CASES,
    ids=[c[0] for c in ADMIN_TRANSITION_CASES],
)
def test_admin_transitions_check_the_change_permission(
    case, permissions, how, transition, status, state, django_capture_on_commit_callbacks
):
    release = make_release("1.0.0")
    client = admin_client(*permissions)
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        if how == "form":
            response = client.post(change_url(release), release_form(release, transition))
        else:
            response = client.post(transition_url(release, transition), {})
    assert response.status_code == status
    assert response.status_code < 500
    assert ReleaseVersion.objects.get(pk=release.pk).state == state
    assert bool(enqueued) == (state == ReleaseState.PENDING)


def test_a_transition_not_offered_to_people_stays_refused():
    image = make_image(state=ImageState.SCANNING)
    client = admin_client(*MAY_CHANGE)
    data = {
        "_fsm_transition_to": "start_push",
        "name": image.name,
        "tag": image.tag,
        "registry": image.registry,
        "architecture": '["amd64", "arm64"]',
        "context_path": "backend/",
        "dockerfile_path": "Dockerfile",
        "labels": "{}",
        **{f"{HISTORY}-{n}": "0" for n in ("TOTAL_FORMS", "INITIAL_FORMS")},
    }
    response = client.post(change_url(image), data, follow=True)
    assert "start_push is not something a person can do here" in response.content.decode().lower()
    assert DockerImage.objects.get(pk=image.pk).state == ImageState.SCANNING


AUDIT_BUTTON_CASES = [
    # (permissions, button shown, POST answer)
    (("view_auditrun",), False, 403),
    (("view_auditrun", "add_auditrun"), True, 302),
]


@pytest.mark.parametrize(("permissions", "shown", "status"), AUDIT_BUTTON_CASES)
def test_run_an_audit_now_needs_the_add_audit_run_permission(
    permissions, shown, status, django_capture_on_commit_callbacks
):
    client = admin_client(*permissions)
    page = client.get(reverse("admin:releases_auditrun_changelist")).content.decode()
    assert ("Run an audit now" in page) == shown
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        response = client.post(reverse("admin:releases_auditrun_start"))
    assert response.status_code == status
    assert bool(enqueued) == shown


# --- 3. A new API token is shown once, in the answer to the POST, never in a cookie or session ----


def test_a_new_api_token_is_shown_once_in_the_answer_and_stored_nowhere_else():
    client = admin_client("add_apitoken", "view_apitoken", "change_apitoken")

    response = client.post(reverse("admin:releases_apitoken_add"), {"name": "ci", "scope": "write"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.content.decode().split('<code id="api-token">')[1].split("<")[0]
    assert ApiToken.authenticate(key) == ApiToken.objects.get(name="ci")
    for cookie in response.cookies.values():
        assert key not in cookie.value
    assert "messages" not in response.cookies
    assert key not in json.dumps(dict(client.session.items()), default=str)
    token = ApiToken.objects.get(name="ci")
    for url in (reverse("admin:releases_apitoken_changelist"), change_url(token)):
        assert key not in client.get(url).content.decode()


# --- 4. The chart repository follows API_READS_PUBLIC; helm sends the token as basic auth ---------


def basic(password: str, username: str = "x") -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


CHART_CASES = [
    # (case, reads public, Authorization header (a callable making it), path, expected status)
    ("anonymous index", False, None, "index.yaml", 401),
    ("anonymous package", False, None, "threek8s-1.0.0.tgz", 401),
    ("basic, read token", False, lambda: basic(token_key("read")), "index.yaml", 200),
    ("basic, write token", False, lambda: basic(token_key("write"), "ci"), "index.yaml", 200),
    ("basic, read token, package", False, lambda: basic(token_key("read")), "threek8s-9.9.9.tgz", 404),
    ("bearer, read token", False, lambda: f"Bearer {token_key('read')}", "index.yaml", 200),
    ("basic, wrong password", False, lambda: basic("rr_not-a-token"), "index.yaml", 401),
    ("basic, revoked token", False, lambda: basic(token_key("read", revoked=True)), "index.yaml", 401),
    ("basic, not base64", False, lambda: "Basic %%%", "index.yaml", 401),
    ("token as username", False, lambda: basic("", token_key("read")), "index.yaml", 401),
    ("public reads, anonymous", True, None, "index.yaml", 200),
]


@pytest.mark.parametrize(
    ("case", "public", "authorization", "path", "status"), CHART_CASES, ids=[c[0] for c in CHART_CASES]
)
def test_the_chart_repository_needs_a_token_unless_reads_are_public(
    client, settings, case, public, authorization, path, status
):
    settings.API_READS_PUBLIC = public
    headers = {"HTTP_AUTHORIZATION": authorization()} if authorization else {}
    response = client.get(f"/charts/{path}", **headers)
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith('Basic realm="charts"')
    if not public and status == 200:
        assert "Authorization" in response["Vary"]


# --- 5. The GitHub webhook acts on GITHUB_REPOSITORY's events only ------------------------------

HOOK_SECRET = "webhook-secret"


def release_event(repository: object = "stianfro/threek8s") -> dict:
    return {
        "action": "published",
        "release": {"tag_name": "v1.4.0", "target_commitish": "b" * 40, "draft": False, "body": ""},
        "repository": {"full_name": repository} if repository is not None else None,
    }


WEBHOOK_CASES = [
    # (case, body, delivery id, event, expected status, releases created)
    ("our repository", release_event(), "d-1", "release", 201, 1),
    ("our repository, other case", release_event("StianFro/ThreeK8s"), "d-1", "release", 201, 1),
    ("another repository", release_event("attacker/threek8s"), "d-1", "release", 403, 0),
    ("a look-alike repository", release_event("stianfro/threek8s-fork"), "d-1", "release", 403, 0),
    ("no repository", release_event(None), "d-1", "release", 403, 0),
    ("repository name not a string", release_event(["stianfro/threek8s"]), "d-1", "release", 403, 0),
    ("ping of another repository", {"zen": "x", "repository": {"full_name": "a/b"}}, "d-1", "ping", 403, 0),
    ("a JSON list", [release_event()], "d-1", "release", 400, 0),
    ("a JSON string", "release", "d-1", "release", 400, 0),
    ("a JSON null", None, "d-1", "release", 400, 0),
    ("an over-long delivery id", release_event(), "d" * 101, "release", 400, 0),
    ("an over-long event name", release_event(), "d-1", "e" * 51, 400, 0),
]


@pytest.mark.parametrize(
    ("case", "body", "delivery", "event", "status", "created"), WEBHOOK_CASES, ids=[c[0] for c in WEBHOOK_CASES]
)
def test_the_webhook_builds_only_the_configured_repository(
    client, settings, case, body, delivery, event, status, created
):
    settings.GITHUB_WEBHOOK_SECRET, settings.GITHUB_REPOSITORY = HOOK_SECRET, "stianfro/threek8s"
    settings.PUBLISH_ON_WEBHOOK = False
    raw = json.dumps(body).encode()
    response = client.post(
        "/hooks/github/",
        raw,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY=delivery,
        HTTP_X_HUB_SIGNATURE_256=compute_signature(HOOK_SECRET, raw),
    )
    assert response.status_code == status, response.content
    assert ReleaseVersion.objects.count() == created
    if status >= 400:
        assert not GitHubDelivery.objects.exists()


def test_a_redelivered_event_still_changes_nothing(client, settings):
    settings.GITHUB_WEBHOOK_SECRET, settings.GITHUB_REPOSITORY = HOOK_SECRET, "stianfro/threek8s"
    settings.PUBLISH_ON_WEBHOOK = False
    raw = json.dumps(release_event()).encode()
    headers = {
        "HTTP_X_GITHUB_EVENT": "release",
        "HTTP_X_GITHUB_DELIVERY": "d-1",
        "HTTP_X_HUB_SIGNATURE_256": compute_signature(HOOK_SECRET, raw),
    }
    statuses = [client.post("/hooks/github/", raw, content_type="application/json", **headers).status_code]
    statuses.append(client.post("/hooks/github/", raw, content_type="application/json", **headers).status_code)
    assert statuses == [201, 200]
    assert ReleaseVersion.objects.count() == 1


# --- Settings that refuse to start (5, 6, 7) ------------------------------------------------------

SETTINGS_CASES = [
    # (environment, what the refusal names)
    ({"GITHUB_WEBHOOK_SECRET": "s"}, "GITHUB_REPOSITORY is required with GITHUB_WEBHOOK_SECRET"),
    ({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_REPOSITORY": "not a repo"}, "GITHUB_REPOSITORY='not a repo'"),
    ({"GITHUB_REPOSITORY": "owner/name/extra"}, "GITHUB_REPOSITORY='owner/name/extra'"),
    ({"AUDIT_WEBHOOK_URL": "https://hooks.example.com/x"}, "AUDIT_WEBHOOK_SECRET is required with AUDIT_WEBHOOK_URL"),
    ({"AUDIT_WEBHOOK_URL": "ftp://x/y", "AUDIT_WEBHOOK_SECRET": "s"}, "AUDIT_WEBHOOK_URL="),
    ({"FIELD_ENCRYPTION_KEYS": "not-a-key"}, "FIELD_ENCRYPTION_KEYS: key 1 is not a Fernet key"),
]


@pytest.mark.parametrize(("env", "named"), SETTINGS_CASES, ids=[c[1][:40] for c in SETTINGS_CASES])
def test_unsafe_settings_stop_the_start(env, named):
    result = start({"DEBUG": "true", **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_safe_settings_start():
    result = start(
        {
            "DEBUG": "true",
            "GITHUB_WEBHOOK_SECRET": "s",
            "GITHUB_REPOSITORY": "stianfro/threek8s",
            "AUDIT_WEBHOOK_URL": "https://hooks.example.com/x",
            "AUDIT_WEBHOOK_SECRET": "s",
        }
    )
    assert result.returncode == 0, result.stderr


# --- 6. Outbound audit webhooks are signed over a timestamp and the body -------------------------


def make_finding() -> AuditFinding:
    return AuditFinding.objects.create(
        type=AuditFinding.Type.MISMATCH,
        severity=AuditFinding.Severity.CRITICAL,
        repository="ghcr.io/stianfro/threek8s/threek8s-backend",
        tag="1.0.0",
        artifact="ghcr.io/stianfro/threek8s/threek8s-backend:1.0.0",
        expected="sha256:" + "a" * 64,
        actual="sha256:" + "b" * 64,
        last_seen=timezone.now(),
    )


@pytest.mark.parametrize(("secret", "sent"), [("audit-secret", True), ("", False)], ids=["signed", "no secret"])
def test_audit_webhooks_are_signed_with_a_timestamp_or_not_sent(settings, secret, sent):
    receiver = WebhookReceiver()
    settings.AUDIT_WEBHOOK_URL, settings.AUDIT_WEBHOOK_SECRET = receiver.url, secret
    try:
        assert send_webhook(make_finding()) is sent
    finally:
        receiver.server.shutdown()
    assert len(receiver.calls) == int(sent)
    if sent:
        body, signature, timestamp = receiver.calls[0]
        assert abs(int(timestamp) - time.time()) < 60
        signed = f"{timestamp}.".encode() + body
        assert hmac.compare_digest(signature, "sha256=" + hmac.new(b"audit-secret", signed, hashlib.sha256).hexdigest())
        # the body alone (the old scheme) no longer verifies: a replayed body needs a fresh timestamp
        assert signature != "sha256=" + hmac.new(b"audit-secret", body, hashlib.sha256).hexdigest()


# --- 7. Secret values: encrypted at rest, never shown, never a lookup ---------------------------


def stored_value(variable: EnvironmentVariable) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT default_value FROM releases_environmentvariable WHERE id = %s", [variable.pk])
        return cursor.fetchone()[0]


def test_secret_values_are_encrypted_at_rest_and_plain_ones_are_not():
    secret = EnvironmentVariable.objects.create(
        name="DB_PASSWORD", default_value=SECRET_VALUE, description="db", secret=True
    )
    plain = EnvironmentVariable.objects.create(name="LOG_LEVEL", default_value="info", description="logs")

    assert stored_value(secret).startswith(ENCRYPTED_PREFIX)
    assert SECRET_VALUE not in stored_value(secret)
    assert stored_value(plain) == "info"
    assert EnvironmentVariable.objects.get(pk=secret.pk).default_value == SECRET_VALUE
    assert secret.default_value == SECRET_VALUE  # the saved instance keeps the plain value


def test_a_secret_needs_a_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS is required"), transaction.atomic():
        EnvironmentVariable.objects.create(name="DB_PASSWORD", default_value=SECRET_VALUE, description="d", secret=True)
    assert not EnvironmentVariable.objects.exists()


def test_keys_rotate_by_adding_the_new_one_first_and_reencrypting(settings):
    from cryptography.fernet import Fernet

    old, new = settings.FIELD_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    variable = EnvironmentVariable.objects.create(
        name="DB_PASSWORD", default_value=SECRET_VALUE, description="db", secret=True
    )
    before = stored_value(variable)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("reencrypt_secrets", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [new]

    assert stored_value(variable) != before
    assert EnvironmentVariable.objects.get(pk=variable.pk).default_value == SECRET_VALUE
    settings.FIELD_ENCRYPTION_KEYS = [old]
    with pytest.raises(ImproperlyConfigured, match="add that key back"):
        EnvironmentVariable.objects.get(pk=variable.pk)


def test_the_migration_encrypts_secret_values_stored_in_plain_text():
    secret = EnvironmentVariable.objects.create(name="DB_PASSWORD", default_value="x", description="db", secret=True)
    plain = EnvironmentVariable.objects.create(name="LOG_LEVEL", default_value="info", description="logs")
    EnvironmentVariable.objects.filter(pk=secret.pk).update(default_value=SECRET_VALUE)  # as before the migration
    assert stored_value(secret) == SECRET_VALUE

    migration = importlib.import_module("releases.migrations.0015_encrypt_secret_values")
    migration.encrypt_secret_values(django_apps, None)

    assert stored_value(secret).startswith(ENCRYPTED_PREFIX)
    assert stored_value(plain) == "info"
    assert EnvironmentVariable.objects.get(pk=secret.pk).default_value == SECRET_VALUE


VALUE_LOOKUP_CASES = [
    # (where, URL, expected status)
    ("admin", "/admin/releases/environmentvariable/?default_value__startswith=hunter", 400),
    ("admin", "/admin/releases/environmentvariable/?default_value=" + SECRET_VALUE, 400),
    ("admin", "/admin/releases/environmentvariable/?default_value__regex=%5Eh", 400),
    ("admin", "/admin/releases/environmentvariable/?secret__exact=1", 200),
    ("api", "/api/v1/environment-variables/?default_value__startswith=hunter", 400),
    ("api", "/api/v1/environment-variables/?default_value=" + SECRET_VALUE, 400),
    ("api", "/api/v1/environment-variables/?secret=true", 200),
]


@pytest.mark.parametrize(
    ("where", "url", "status"), VALUE_LOOKUP_CASES, ids=[f"{c[0]}:{c[1].split('?')[1]}" for c in VALUE_LOOKUP_CASES]
)
def test_values_cannot_be_looked_up_and_secrets_are_never_shown(settings, where, url, status):
    settings.API_READS_PUBLIC = True
    EnvironmentVariable.objects.create(name="DB_PASSWORD", default_value=SECRET_VALUE, description="db", secret=True)
    client = admin_client("view_environmentvariable") if where == "admin" else APIClient()
    response = client.get(url)
    assert response.status_code == status
    page = response.content.decode()
    assert SECRET_VALUE not in page.replace(url, "")
    assert ENCRYPTED_PREFIX not in page


def test_secret_values_are_never_served_by_the_api_or_the_admin():
    variable = EnvironmentVariable.objects.create(
        name="DB_PASSWORD", default_value=SECRET_VALUE, description="db", secret=True
    )
    client = admin_client("view_environmentvariable", "change_environmentvariable")
    pages = [
        client.get(reverse("admin:releases_environmentvariable_changelist")),
        client.get(change_url(variable)),
        APIClient().get("/api/v1/environment-variables/"),
        APIClient().get("/api/v1/environment-variables/DB_PASSWORD/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert SECRET_VALUE not in page.content.decode()
        assert ENCRYPTED_PREFIX not in page.content.decode()
    assert pages[3].json()["default_value"] is None
