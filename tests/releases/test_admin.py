"""The admin screens: they render, show only the transitions a person may fire, fire them through
the service (recorded, refused with reasons), keep published rows read-only and hide secrets."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from releases.choices import ImageState, ReleaseState
from releases.models import DockerImage, EnvironmentVariable, HelmChart, ReleaseVersion
from tests.fixtures.factories import make_image, make_published_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    client.user = user
    return client


HISTORY = "releases-statetransition-content_type-object_id"


def management_forms(*prefixes: str) -> dict[str, str]:
    data = {}
    for prefix in (*prefixes, HISTORY):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


def image_form(image: DockerImage, transition: str) -> dict[str, str]:
    """The image change form as the admin posts it, asking for ``transition``."""
    return {
        "_fsm_transition_to": transition,
        "name": image.name,
        "tag": image.tag,
        "registry": image.registry,
        "architecture": '["amd64", "arm64"]',
        "context_path": "backend/",
        "dockerfile_path": "Dockerfile",
        "labels": "{}",
        **management_forms(),
    }


def change_url(obj):
    return reverse(f"admin:releases_{obj._meta.model_name}_change", args=[obj.pk])


def test_every_screen_renders_with_the_sample_data(staff_client):
    call_command("load_sample_data", stdout=io.StringIO())
    for model in (
        "dockerimage",
        "helmchart",
        "releaseversion",
        "releaseartifact",
        "environmentvariable",
        "statetransition",
    ):
        response = staff_client.get(reverse(f"admin:releases_{model}_changelist"))
        assert response.status_code == 200, model
    for obj in (*DockerImage.objects.all(), HelmChart.objects.get(), ReleaseVersion.objects.get()):
        assert staff_client.get(change_url(obj)).status_code == 200


def test_only_person_transitions_are_offered(staff_client):
    image = make_image(state=ImageState.BUILDING)
    page = staff_client.get(change_url(image)).content.decode()
    assert 'value="fail"' in page
    assert 'value="start_scan"' not in page


def test_transition_button_fires_through_the_service_and_is_recorded(staff_client):
    image = make_image(state=ImageState.BUILDING)
    data = image_form(image, "fail")
    response = staff_client.post(change_url(image), data, follow=True)
    assert response.status_code == 200
    image.refresh_from_db()
    assert image.state == ImageState.FAILED
    log = image.state_transitions.get()
    assert (log.source, log.target, log.actor) == ("building", "failed", staff_client.user)


def release_form(release: ReleaseVersion, transition: str) -> dict[str, str]:
    return {
        "_fsm_transition_to": transition,
        "version": release.version,
        "commit_sha": release.commit_sha,
        "release_date_0": "2026-11-26",
        "release_date_1": "10:00:00",
        **management_forms("artifacts"),
    }


def test_refused_transition_shows_its_reason(staff_client):
    release = ReleaseVersion.objects.create(version="3.0.0", commit_sha="b" * 40)
    response = staff_client.post(change_url(release), release_form(release, "retry"), follow=True)
    assert "refused: cannot retry from state draft; from draft you may refuse_plan, submit" in response.content.decode()
    assert ReleaseVersion.objects.get(pk=release.pk).state == ReleaseState.DRAFT


def test_publish_on_a_draft_plans_it_and_enqueues_the_release(staff_client, django_capture_on_commit_callbacks):
    # Given a draft with nothing planned: the Publish button is offered
    release = ReleaseVersion.objects.create(version="3.1.0", commit_sha="b" * 40)
    assert 'value="submit"' in staff_client.get(change_url(release)).content.decode()

    # When it is clicked
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        staff_client.post(change_url(release), release_form(release, "submit"), follow=True)

    # Then the release is planned (both images, the chart) and pending, with one orchestration enqueued
    release.refresh_from_db()
    assert release.state == ReleaseState.PENDING
    assert sorted(release.images().values_list("name", flat=True)) == ["threek8s-backend", "threek8s-frontend"]
    assert release.charts().count() == 1
    assert len(enqueued) == 1
    assert release.state_transitions.get().actor == staff_client.user


def test_retry_buttons_enqueue_work(staff_client, django_capture_on_commit_callbacks):
    image = make_image(state=ImageState.FAILED)
    data = image_form(image, "retry")
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        staff_client.post(change_url(image), data, follow=True)
    image.refresh_from_db()
    assert image.state == ImageState.QUEUED
    assert len(enqueued) == 1


def test_a_transition_not_offered_to_people_is_refused(staff_client):
    image = make_image(state=ImageState.SCANNING)
    data = image_form(image, "start_push")
    response = staff_client.post(change_url(image), data, follow=True)
    assert "push is not something a person can do here" in response.content.decode()
    image.refresh_from_db()
    assert image.state == ImageState.SCANNING


def test_published_rows_are_read_only(staff_client):
    release, frontend, _, chart = make_published_set()
    ReleaseVersion.objects.filter(pk=release.pk).update(state=ReleaseState.PUBLISHED)
    for obj, key_field in ((frontend, "tag"), (chart, "chart_version"), (release, "version")):
        page = staff_client.get(change_url(obj)).content.decode()
        assert f'name="{key_field}"' not in page, obj
        assert "deletelink" not in page, obj


def test_secret_values_are_never_shown(staff_client):
    variable = EnvironmentVariable.objects.create(
        name="DB_PASSWORD", default_value="hunter2-very-secret", description="db", secret=True
    )
    assert (
        "hunter2-very-secret"
        not in staff_client.get(reverse("admin:releases_environmentvariable_changelist")).content.decode()
    )
    assert "hunter2-very-secret" not in staff_client.get(change_url(variable)).content.decode()
    # saving the form without retyping the secret keeps it
    staff_client.post(
        change_url(variable),
        {"name": "DB_PASSWORD", "default_value": "", "description": "db", "scope": "both", "secret": "on"},
    )
    assert EnvironmentVariable.objects.get(pk=variable.pk).default_value == "hunter2-very-secret"


def test_api_token_is_shown_once_and_stored_hashed(staff_client):
    from releases.models import ApiToken

    response = staff_client.post(reverse("admin:releases_apitoken_add"), {"name": "github-actions", "scope": "write"})
    page = response.content.decode()
    token = ApiToken.objects.get(name="github-actions")
    shown = page.split('<code id="api-token">')[1].split("<")[0]
    assert shown.startswith("rr_")
    assert token.key_hash == ApiToken.hash(shown) and shown not in token.key_hash
    assert ApiToken.authenticate(shown) == token


def test_the_admin_shows_the_release_layout_and_the_chart_pins_and_warnings(staff_client):
    # Given a planned release and a chart as validation left them (published rows are frozen)
    release = ReleaseVersion.objects.create(
        version="1.5.0",
        commit_sha="c" * 40,
        layout={"source": ".release-registry.yaml at abc", "chart": {"path": "helm/threek8s"}, "images": {}},
    )
    pinned_tag = "1.5.0@sha256:" + "1" * 64
    chart = HelmChart.objects.create(
        chart_version="1.5.0",
        app_version="1.5.0",
        image_pins={"frontend": {"values": "frontend.image", "tag": pinned_tag}},
        warnings=["Pod/test: spec.containers[0].image: deploys busybox:1.36, outside the namespace"],
    )

    release_page = staff_client.get(change_url(release)).content.decode()
    chart_page = staff_client.get(change_url(chart)).content.decode()

    assert "helm/threek8s" in release_page and ".release-registry.yaml at abc" in release_page
    assert pinned_tag in chart_page and "deploys busybox:1.36" in chart_page
