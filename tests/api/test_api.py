"""The REST API: token-scoped writes, model rules as 400 field errors, 409 for conflicts and
refused transitions, semver ordering, ETags, constant query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from releases.choices import ImageState, ReleaseState
from releases.models import ApiToken, EnvironmentVariable, ReleaseVersion
from tests.fixtures.factories import COMMIT, make_image, make_published_set, make_release

pytestmark = pytest.mark.django_db


def client_with(scope: str | None) -> APIClient:
    client = APIClient()
    if scope:
        token = ApiToken(name=f"ci-{scope}", scope=scope)
        key = token.issue()
        token.save()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def writer() -> APIClient:
    return client_with("write")


RELEASE = {"version": "1.4.0", "commit_sha": COMMIT, "pr_number": 42, "changelog": "## 1.4.0\n", "release_notes": "x"}


def test_ci_client_creates_a_release_with_a_write_token(writer):
    response = writer.post("/api/v1/releases/", RELEASE, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["state"] == "draft"
    assert ReleaseVersion.objects.get().pr_number == 42


def test_pr_number_is_read_from_the_release_commit_when_not_given(writer, settings, release_please_repo):
    sha = release_please_repo.release("1.4.0", 43)
    settings.SOURCE_REPOSITORY_URL = release_please_repo.url
    body = {**RELEASE, "commit_sha": sha}
    del body["pr_number"]

    response = writer.post("/api/v1/releases/", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["pr_number"] == 43


def test_a_given_pr_number_wins_over_the_commit(writer, settings, release_please_repo):
    sha = release_please_repo.release("1.4.0", 43)
    settings.SOURCE_REPOSITORY_URL = release_please_repo.url
    response = writer.post("/api/v1/releases/", {**RELEASE, "commit_sha": sha}, format="json")
    assert response.json()["pr_number"] == 42


def test_an_unreadable_source_repository_leaves_pr_number_empty_and_says_why(writer, settings, tmp_path, caplog):
    settings.SOURCE_REPOSITORY_URL = f"file://{tmp_path / 'gone'}"
    body = dict(RELEASE)
    del body["pr_number"]

    with caplog.at_level("WARNING", logger="releases.services"):
        response = writer.post("/api/v1/releases/", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["pr_number"] is None
    assert "release 1.4.0: pr_number not read from commit" in caplog.text
    assert "cannot read repository" in caplog.text


@pytest.mark.parametrize(("scope", "status"), [(None, 401), ("read", 403)])
def test_writes_need_a_write_token(scope, status):
    response = client_with(scope).post("/api/v1/releases/", RELEASE, format="json")
    assert response.status_code == status
    assert not ReleaseVersion.objects.exists()


def test_unknown_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer rr_not-a-token")
    assert client.get("/api/v1/releases/").status_code == 401


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("version", "1.4", "not a semantic version"),
        ("commit_sha", "abc1234", "not a full git commit hash"),
        ("pr_number", 0, "positive pull request number"),
    ],
)
def test_bad_input_gets_the_model_rule_as_a_field_error(writer, field, value, words):
    response = writer.post("/api/v1/releases/", {**RELEASE, field: value}, format="json")
    assert response.status_code == 400
    assert any(words in message for message in response.json()[field])
    assert not ReleaseVersion.objects.exists()


def test_every_field_error_comes_back_in_one_answer(writer):
    response = writer.post("/api/v1/releases/", {"version": "1.0", "commit_sha": "xyz", "pr_number": -1}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"version", "commit_sha", "pr_number"}
    assert any("not a semantic version" in message for message in errors["version"])
    assert any("not a full git commit hash" in message for message in errors["commit_sha"])
    assert any("positive pull request number" in message for message in errors["pr_number"])


def test_type_errors_and_model_errors_come_back_together(writer):
    response = writer.post("/api/v1/releases/", {**RELEASE, "version": "1.0", "pr_number": "many"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"version", "pr_number"}


def test_a_200_character_version_is_a_400_saying_the_limit(writer):
    response = writer.post("/api/v1/releases/", {**RELEASE, "version": "1.0.0-" + "a" * 194}, format="json")
    assert response.status_code == 400
    assert any("at most 128 characters" in message for message in response.json()["version"])
    assert not ReleaseVersion.objects.exists()


def test_a_127_character_version_is_stored_and_ordered(writer):
    # Its old sort key did not fit the 128-character column: a 500 on PostgreSQL.
    long_version = "1.0.0-" + "a" * 121
    assert writer.post("/api/v1/releases/", {**RELEASE, "version": long_version}, format="json").status_code == 201
    make_release("1.0.0")
    listed = writer.get("/api/v1/releases/?ordering=version").json()["results"]
    assert [r["version"] for r in listed] == [long_version, "1.0.0"]


def test_build_metadata_is_refused_saying_what_to_do(writer):
    response = writer.post("/api/v1/releases/", {**RELEASE, "version": "1.0.0+build.1"}, format="json")
    assert response.status_code == 400
    [message] = response.json()["version"]
    assert "'+' is not allowed in OCI tags" in message
    assert "Release Please never writes build metadata, use a pre-release such as 1.0.0-build.1" in message


def test_duplicate_version_is_a_conflict(writer):
    make_release("1.4.0")
    response = writer.post("/api/v1/releases/", RELEASE, format="json")
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert ReleaseVersion.objects.count() == 1


def test_releases_are_ordered_by_semantic_version_not_string(writer):
    for version in ("1.9.0", "1.10.0", "1.2.0", "1.10.0-rc.1"):
        make_release(version)
    listed = writer.get("/api/v1/releases/?ordering=version").json()["results"]
    assert [r["version"] for r in listed] == ["1.2.0", "1.9.0", "1.10.0-rc.1", "1.10.0"]
    default = writer.get("/api/v1/releases/").json()["results"]
    assert default[0]["version"] == "1.10.0"


def test_prereleases_with_hyphens_order_by_semver(writer):
    for version in ("1.0.0", "1.0.0-alpha-1", "1.0.0-rc.1", "1.0.0-alpha", "1.0.0-alpha.beta"):
        make_release(version)
    listed = writer.get("/api/v1/releases/?ordering=version").json()["results"]
    assert [r["version"] for r in listed] == ["1.0.0-alpha", "1.0.0-alpha.beta", "1.0.0-alpha-1", "1.0.0-rc.1", "1.0.0"]


def test_detail_by_version_answers_etags_and_404(writer):
    make_release("1.4.0")
    first = writer.get("/api/v1/releases/1.4.0/")
    assert first.status_code == 200
    again = writer.get("/api/v1/releases/1.4.0/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert writer.get("/api/v1/releases/9.9.9/").status_code == 404


def test_latest_is_the_highest_published_version(writer):
    for version in ("1.10.0", "1.9.0"):
        release, *_ = make_published_set(version)
        ReleaseVersion.objects.filter(pk=release.pk).update(state=ReleaseState.PUBLISHED)
    make_release("2.0.0")  # a draft is not published
    response = writer.get("/api/v1/releases/latest/")
    assert response.json()["version"] == "1.10.0"
    assert len(response.json()["artifacts"]) == 3


def test_publish_answers_202_with_where_to_poll_and_a_second_publish_is_refused(writer):
    make_release("1.4.0")
    response = writer.post("/api/v1/releases/1.4.0/publish/")
    assert response.status_code == 202
    assert response.json()["state"] == "pending"
    assert response["Location"].endswith("/api/v1/releases/1.4.0/")

    again = writer.post("/api/v1/releases/1.4.0/publish/")
    assert again.status_code == 409
    assert "cannot submit from state pending" in again.json()["reasons"][0]
    assert ReleaseVersion.objects.get().state == ReleaseState.PENDING


def test_publishing_a_published_release_is_a_conflict(writer):
    release, *_ = make_published_set("1.0.0")
    ReleaseVersion.objects.filter(pk=release.pk).update(state=ReleaseState.PUBLISHED)
    response = writer.post("/api/v1/releases/1.0.0/publish/")
    assert response.status_code == 409
    assert "already published" in response.json()["detail"]


def test_retry_of_a_release_that_did_not_fail_is_refused(writer):
    make_release("1.4.0")
    response = writer.post("/api/v1/releases/1.4.0/retry/")
    assert response.status_code == 409
    assert "cannot retry from state draft" in response.json()["reasons"][0]


def test_secret_values_are_never_returned(writer):
    EnvironmentVariable.objects.create(name="DB_PASSWORD", default_value="hunter2", description="db", secret=True)
    EnvironmentVariable.objects.create(name="NODE_ENV", default_value="production", description="mode")
    body = writer.get("/api/v1/environment-variables/").content.decode()
    assert "hunter2" not in body
    assert "production" in body


def test_images_filter_by_state_and_type(writer):
    make_image("threek8s-backend", "1.0.0", ImageState.AVAILABLE)
    make_image("threek8s-frontend", "1.0.0", ImageState.QUEUED)
    listed = writer.get("/api/v1/images/?state=available").json()["results"]
    assert [(i["name"], i["state"]) for i in listed] == [("threek8s-backend", "available")]
    listed = writer.get("/api/v1/images/?type=docker-frontend").json()["results"]
    assert [i["name"] for i in listed] == ["threek8s-frontend"]


@pytest.mark.parametrize(
    "endpoint", ["/api/v1/releases/", "/api/v1/images/", "/api/v1/charts/", "/api/v1/environment-variables/"]
)
def test_list_endpoints_run_a_constant_number_of_queries(writer, endpoint):
    for n in range(12):
        make_published_set(f"1.{n}.0")
        EnvironmentVariable.objects.create(name=f"VAR_{n}", default_value="x", description="d")

    def count(page_size: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert writer.get(f"{endpoint}?page_size={page_size}").status_code == 200
        return len(queries)

    assert count(2) == count(12)


def test_openapi_schema_and_docs_are_served():
    client = APIClient()
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_cached_list_pages_change_with_the_data(writer):
    make_release("1.0.0")
    first = writer.get("/api/v1/releases/")
    assert writer.get("/api/v1/releases/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304

    make_release("1.1.0")
    second = writer.get("/api/v1/releases/")

    assert second["ETag"] != first["ETag"]
    assert [r["version"] for r in second.json()["results"]] == ["1.1.0", "1.0.0"]
    assert writer.get("/api/v1/releases/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200
