"""A release's and an image's change pages: live panels (state, step, log tail, timeline), the
image's structured tables, and published rows that offer nothing that could change them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from releases.choices import ImageState, ReleaseState
from releases.models import DockerImage, EnvironmentVariable, ReleaseVersion
from tests.fixtures.factories import make_image, make_published_set, make_release, seed_release_history

pytestmark = pytest.mark.django_db


def client_with(*codenames: str) -> Client:
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="releases", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def change_url(obj) -> str:
    return reverse(f"admin:releases_{obj._meta.model_name}_change", args=[obj.pk])


def live_url(obj) -> str:
    return reverse(f"admin:releases_{obj._meta.model_name}_live", args=[obj.pk])


def test_image_page_shows_digests_findings_labels_and_environment_as_tables(superuser_client):
    secret = EnvironmentVariable.objects.create(
        name="API_KEY", description="key", secret=True, default_value="hunter2-secret"
    )
    plain = EnvironmentVariable.objects.create(name="LOG_LEVEL", description="level", default_value="info")
    _, frontend, _, _ = make_published_set()
    DockerImage.objects.filter(pk=frontend.pk).update()  # published: content is frozen by triggers
    image = make_image(
        "threek8s-backend",
        "2.0.0",
        ImageState.FAILED,
        platform_digests={
            "linux/amd64": {"digest": "sha256:" + "a" * 64, "size": 3739, "os": "linux", "architecture": "amd64"},
            "linux/arm64": "sha256:" + "b" * 64,  # the bare digest older rows recorded
        },
        scan_findings=[
            {"severity": "low", "check": "size", "path": "/", "message": "big"},
            {"severity": "critical", "check": "secret", "path": "/app/.env", "message": "a key"},
            {"severity": "high", "check": "root", "path": "", "message": "runs as root"},
        ],
        labels={"org.opencontainers.image.version": "2.0.0"},
        build_log="step 1\nstep 2\nerror: no Dockerfile",
        failure_reason="Dockerfile.missing not found",
    )
    image.environment_variables.add(secret, plain)

    page = superuser_client.get(change_url(image)).content.decode()

    assert page.count('data-copy="sha256:' + "a" * 64 + '"') == 1
    assert f'data-copy="{image.repository}@sha256:{"b" * 64}"' in page
    assert "3,739 bytes" in page and "'os'" not in page
    severities = [p.split('"')[0] for p in page.split('data-severity="')[1:]]
    assert severities == ["critical", "high", "low"]
    assert "<code>org.opencontainers.image.version</code></th><td>2.0.0" in page
    assert "LOG_LEVEL" in page and "hidden (secret)" in page and "hunter2-secret" not in page
    assert "unsigned (this registry does not record signatures yet)" in page or "unsigned:" in page
    assert 'data-role="log">step 1\nstep 2\nerror: no Dockerfile</pre>' in page
    assert 'value="retry"' in page  # a failed image offers Retry


def test_image_live_endpoint_returns_state_step_and_log_tail(superuser_client):
    log = "\n".join(map(str, range(100)))
    image = make_image(state=ImageState.BUILDING, progress="building linux/arm64", build_log=log)
    answer = superuser_client.get(live_url(image), {"state": "queued"}).json()

    assert answer["active"] is True and answer["state"] == "building"
    assert "building linux/arm64" in answer["html"]
    assert "last 40 of 100 lines" in answer["html"] and ">60\n" in answer["html"] and ">59\n" not in answer["html"]
    assert "reload" in answer["html"]  # drawn while queued: the actions offered have changed


def test_release_page_draws_the_timeline_with_one_bar_per_stage(superuser_client):
    seed_release_history(2)  # 1.0.0 is published, 1.0.1 is building
    published = ReleaseVersion.objects.get(version="1.0.0")
    page = superuser_client.get(change_url(published)).content.decode()

    stages = re.findall(r'data-stage="([a-z]+)"', page)
    assert stages.count("building") == 3  # the release and both images
    assert sorted(stages) == sorted(
        ["pending", "building", "publishing"]
        + 2 * ["queued", "building", "scanning", "pushing"]
        + ["validating", "packaging", "uploading"]
    )
    assert 'data-active="false"' in page

    building = ReleaseVersion.objects.get(version="1.0.1")
    answer = superuser_client.get(live_url(building)).json()
    assert answer["active"] is True and "cr-running" in answer["html"]


def test_published_rows_offer_nothing_that_could_change_them(superuser_client):
    release, frontend, _, chart = make_published_set()
    ReleaseVersion.objects.filter(pk=release.pk).update(state=ReleaseState.PUBLISHED)
    artifact = release.artifacts.first()
    for obj in (release, frontend, chart, artifact):
        page = superuser_client.get(change_url(obj)).content.decode()
        assert 'name="_save"' not in page and 'name="_continue"' not in page, obj
        assert "deletelink" not in page and "_fsm_transition_to" not in page, obj
        assert superuser_client.post(change_url(obj), {"_save": "1"}).status_code == 403, obj


def test_actions_are_offered_only_when_the_transition_is_possible(superuser_client):
    expectations = {
        make_release("3.0.0"): ['value="submit"'],
        make_release("3.0.1", state=ReleaseState.BUILDING): ['value="fail"'],
        make_release("3.0.2", state=ReleaseState.FAILED): ['value="retry"'],
    }
    for release, offered in expectations.items():
        page = superuser_client.get(change_url(release)).content.decode()
        buttons = set(re.findall(r'name="_fsm_transition_to"\s+value="([a-z_]+)"', page))
        assert buttons == {o.split('"')[1] for o in offered}, (release.state, buttons)


def test_view_only_user_sees_panels_but_no_action_and_a_forged_post_is_refused():
    release = make_release("4.0.0")
    client = client_with("view_releaseversion")
    page = client.get(change_url(release)).content.decode()
    assert 'id="live-panel"' in page and "_fsm_transition_to" not in page
    assert client.get(live_url(release)).status_code == 200
    assert client.post(change_url(release), {"_fsm_transition_to": "submit"}).status_code == 403
    assert ReleaseVersion.objects.get(pk=release.pk).state == ReleaseState.DRAFT


def test_live_endpoints_need_the_view_permission():
    release, image = make_release("4.1.0"), make_image(tag="4.1.0")
    client = client_with()
    assert client.get(live_url(release)).status_code == 403
    assert client.get(live_url(image)).status_code == 403
