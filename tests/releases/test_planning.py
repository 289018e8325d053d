"""Planning reads ``.release-registry.yaml`` at the release's commit: the rows it creates follow it, a bad
file fails the release before anything is built, and a stored layout is never replaced."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from releases.choices import ArtifactType, EnvironmentScope, ImageState, ReleaseState
from releases.layout import LAYOUT_FILE
from releases.models import ApiToken, DockerImage, EnvironmentVariable, ReleaseVersion
from releases.services import PlanRefused, plan_release, publish_release, retry_release
from releases.transitions import record_artifact
from tests.fixtures.factories import digest_of, make_published_set, make_release
from tests.fixtures.real_project import commit_all, write_real_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings, tmp_path):
    root = tmp_path / "threek8s"
    settings.SOURCE_REPOSITORY_URL = f"file://{root}"
    settings.BUILD_WORKDIR = tmp_path / "builds"
    return root


@pytest.fixture
def writer() -> APIClient:
    token = ApiToken(name="ci", scope=ApiToken.Scope.WRITE)
    key = token.issue()
    token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def variables() -> dict[str, EnvironmentVariable]:
    return {
        name: EnvironmentVariable.objects.create(
            name=name, default_value=value, description=name.lower(), scope=scope, secret=secret
        )
        for name, value, scope, secret in (
            ("API_URL", "/api", EnvironmentScope.FRONTEND, False),
            ("DATABASE_URL", "postgres://db", EnvironmentScope.BACKEND, True),
            ("LOG_LEVEL", "info", EnvironmentScope.BOTH, False),
        )
    }


def test_publishing_plans_the_images_and_chart_the_commit_layout_names(project, writer):
    # Given a project with .release-registry.yaml and documented variables
    env = variables()
    release = make_release("1.4.0", commit_sha=commit_all(write_real_project(project, "1.4.0")))

    # When it is published
    assert writer.post("/api/v1/releases/1.4.0/publish/").status_code == 202

    # Then the release stores the effective layout, and the rows follow it
    release.refresh_from_db()
    assert release.state == ReleaseState.PENDING
    assert release.layout["source"] == f"{LAYOUT_FILE} at {release.commit_sha[:12]}"
    assert release.layout["chart"] == {"path": "helm/threek8s"}
    frontend, backend = DockerImage.objects.get(name="frontend"), DockerImage.objects.get(name="backend")
    assert (frontend.component, frontend.context_path, frontend.dockerfile_path) == (
        "frontend",
        "frontend/",
        "Dockerfile",
    )
    assert backend.build_args == {"APP_MODULE": "threek8s.api"}
    assert set(release.images()) == {frontend, backend}
    # And each row is linked to the variables of its scope; the chart to all
    assert set(frontend.environment_variables.all()) == {env["API_URL"], env["LOG_LEVEL"]}
    assert set(backend.environment_variables.all()) == {env["DATABASE_URL"], env["LOG_LEVEL"]}
    assert set(release.charts().get().environment_variables.all()) == set(env.values())

    # And the API shows the layout and each row's variables, never a secret's value
    detail = writer.get("/api/v1/releases/1.4.0/").json()
    assert detail["layout"]["images"]["backend"]["name"] == "backend"
    images = {i["name"]: i for i in writer.get("/api/v1/images/").json()["results"]}
    shown = {v["name"]: v["default_value"] for v in images["backend"]["environment_variables"]}
    assert shown == {"DATABASE_URL": None, "LOG_LEVEL": "info"}
    assert "postgres://db" not in writer.get("/api/v1/charts/").content.decode()
    assert [i["name"] for i in writer.get("/api/v1/images/?type=docker-frontend").json()["results"]] == ["frontend"]


def test_a_bad_layout_fails_the_release_with_every_problem_before_anything_is_planned(project, writer):
    # Given a commit whose layout has two mistakes
    write_real_project(project, "1.4.0")
    (project / LAYOUT_FILE).write_text("chart:\n  path: /helm\nimages:\n  frontend:\n    nmae: web\n")
    make_release("1.4.0", commit_sha=commit_all(project))

    # When it is published
    response = writer.post("/api/v1/releases/1.4.0/publish/")

    # Then the answer and the failed release list both problems; nothing was planned
    assert response.status_code == 409
    reasons = response.json()["reasons"]
    assert reasons == [
        f"{LAYOUT_FILE}: images.frontend.nmae: unknown key; the keys allowed here are build_args, context, "
        "dockerfile, name, values",
        f"{LAYOUT_FILE}: chart.path: '/helm' is absolute; give a path relative to the repository root",
    ]
    release = ReleaseVersion.objects.get(version="1.4.0")
    assert release.state == ReleaseState.FAILED
    assert release.failed_artifact == LAYOUT_FILE
    assert release.failure_reason == "; ".join(reasons)
    assert (release.layout, DockerImage.objects.count(), release.charts().count()) == ({}, 0, 0)

    # And a retry reads it again and is refused while the commit's file is still wrong
    with pytest.raises(PlanRefused):
        retry_release(release.pk)
    assert ReleaseVersion.objects.get(pk=release.pk).state == ReleaseState.FAILED


def test_a_release_that_failed_at_planning_is_planned_by_its_retry(project, settings):
    # Given a release that failed at planning because the source could not be read
    release = make_release("1.4.0", commit_sha=commit_all(write_real_project(project, "1.4.0")))
    settings.SOURCE_REPOSITORY_URL = f"file://{project}-gone"
    with pytest.raises(PlanRefused, match="cannot be read"):
        publish_release(release.pk)
    assert ReleaseVersion.objects.get(pk=release.pk).state == ReleaseState.FAILED

    # When the source is back and the release is retried
    settings.SOURCE_REPOSITORY_URL = f"file://{project}"
    release = retry_release(release.pk)

    # Then it is pending with the rows of its layout
    assert release.state == ReleaseState.PENDING
    assert sorted(release.images().values_list("name", flat=True)) == ["backend", "frontend"]


def test_without_a_layout_file_the_spec_names_are_planned(project):
    write_real_project(project, "1.4.0")
    (project / LAYOUT_FILE).unlink()
    release = make_release("1.4.0", commit_sha=commit_all(project))

    release = publish_release(release.pk)

    assert sorted(release.images().values_list("name", flat=True)) == ["threek8s-backend", "threek8s-frontend"]
    assert release.layout["source"] == f"defaults (no {LAYOUT_FILE})"
    assert release.layout["chart"]["path"] == "chart/"


def test_new_names_never_touch_the_rows_of_releases_planned_before(project):
    # Given a published release planned with the spec's names (before layouts were stored)
    old, old_frontend, _, _ = make_published_set("1.3.0")
    # And a new release whose commit names its images frontend/backend
    new = make_release("1.4.0", commit_sha=commit_all(write_real_project(project, "1.4.0")))
    new = publish_release(new.pk)

    # Then each release finds its own images, and its artifacts get the types of its components
    assert sorted(old.images().values_list("name", flat=True)) == ["threek8s-backend", "threek8s-frontend"]
    assert sorted(new.images().values_list("name", flat=True)) == ["backend", "frontend"]
    assert old.artifacts.get(type=ArtifactType.DOCKER_FRONTEND).docker_image == old_frontend
    frontend = new.images().get(name="frontend")
    DockerImage.objects.filter(pk=frontend.pk).update(
        state=ImageState.AVAILABLE, digest=digest_of("frontend"), size=1, build_date=new.release_date
    )
    frontend.refresh_from_db()
    assert record_artifact(new, frontend).type == ArtifactType.DOCKER_FRONTEND

    # And planning again keeps the stored layout whatever the defaults say now
    stored = dict(new.layout)
    plan_release(new.pk)
    new.refresh_from_db()
    assert new.layout == stored
