"""Leaks and escapes: what a commit author or a configured secret can make the service show.

Each row of the tables is an input a commit author (or a misconfiguration) controls, the state
the work must end in with a message, and what must stay unchanged: nothing stored or pushed, and
no secret in any served response, reason or log line.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from releases.choices import ChartState, EnvironmentScope, ImageState
from releases.models import DockerImage, EnvironmentVariable, HelmChart
from releases.observability.redaction import ScrubbingFilter
from releases.pipelines.charts import run_chart_pipeline
from releases.pipelines.image_builds import oci_labels
from releases.pipelines.images import run_image_pipeline
from releases.transitions import fire_transition
from tests.fixtures.factories import make_image, make_release
from tests.pipeline.test_chart_pipeline import ChartSource, chart_repository, plan_chart, registry
from tests.pipeline.test_image_pipeline import SourceRepo

pytestmark = [pytest.mark.django_db, pytest.mark.services]

SECRET_VALUE = "hunter2-" + "x" * 12
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


def served_text(client: APIClient) -> str:
    """Every JSON document the API serves about images and charts, as one string to search."""
    return "\n".join(
        json.dumps(client.get(url).json())
        for url in ("/api/v1/images/", "/api/v1/charts/", "/api/v1/environment-variables/")
    )


def link(root: Path, name: str, target: str) -> None:
    path = root / "chart" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.symlink(target, path)


CHART_CASES = [
    # (case, how the commit breaks the chart, what the invalid reason names)
    ("symlink to the worker's environment", lambda root: link(root, "files/env", "/proc/self/environ"), "files/env"),
    ("symlinked values.yaml", lambda root: link(root, "values.yaml", "/etc/hostname"), "values.yaml"),
    ("symlink inside the chart", lambda root: link(root, "files/again", "../values.yaml"), "files/again"),
    ("alias bomb in values.yaml", lambda root: (root / "chart" / "values.yaml").write_text(ALIAS_BOMB), "alias"),
    (
        "oversize values.yaml",
        lambda root: (root / "chart" / "values.yaml").write_text("x: " + "y" * (2 * 1024 * 1024) + "\n"),
        "over the limit",
    ),
    (
        "a secret's value in values.yaml",
        lambda root: (root / "chart" / "values.yaml").write_text(
            (root / "chart" / "values.yaml").read_text() + f"\nsecretsLeak:\n  env:\n    DB_PASSWORD: {SECRET_VALUE}\n"
        ),
        "DB_PASSWORD",
    ),
]


@pytest.mark.parametrize(("case", "commit_change", "named"), CHART_CASES, ids=[c[0] for c in CHART_CASES])
def test_a_chart_that_reaches_out_or_leaks_is_invalid_and_nothing_is_stored_or_pushed(
    chart_source: ChartSource, settings, case, commit_change, named
):
    # Given a chart whose commit does what the row says, with DB_PASSWORD a secret variable
    secret = EnvironmentVariable.objects.create(
        name="DB_PASSWORD", description="database", required=True, secret=True, scope=EnvironmentScope.BACKEND
    )
    commit_change(chart_source.root)
    chart = plan_chart(chart_source.commit())
    chart.environment_variables.add(secret)

    # When the pipeline runs
    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    # Then it is invalid naming the offending path or value, stores nothing it read, pushes nothing
    chart.refresh_from_db()
    assert any(named in problem for problem in chart.problems), chart.problems
    assert (chart.values, chart.templates, chart.package_digest) == ({}, [], "")
    with registry(settings) as client:
        assert client.head_manifest(chart_repository(settings), "1.0.0") is None
    served = served_text(APIClient())
    assert SECRET_VALUE not in served
    if len(settings.SECRET_KEY) >= 16:  # a one-letter test key would be found in any text
        assert settings.SECRET_KEY not in served and settings.SECRET_KEY not in " ".join(chart.problems)


def test_a_secret_value_is_masked_wherever_chart_values_came_from(db):
    # Given an indexed chart whose stored values name a secret variable (stored before it was secret)
    EnvironmentVariable.objects.create(
        name="API_TOKEN", description="token", required=True, secret=True, scope=EnvironmentScope.BOTH
    )
    make_release()
    make_image("threek8s-frontend", state=ImageState.AVAILABLE, digest="sha256:" + "1" * 64, size=1)
    make_image("threek8s-backend", state=ImageState.AVAILABLE, digest="sha256:" + "2" * 64, size=1)
    HelmChart.objects.create(
        chart_version="1.0.0",
        app_version="1.0.0",
        values={
            "backend": {"env": {"API_TOKEN": SECRET_VALUE, "LOG_LEVEL": "info"}},
            "list": [{"name": "API_TOKEN", "value": SECRET_VALUE}],
        },
    )

    body = APIClient().get("/api/v1/charts/").json()

    # Then the API shows the shape, never the value
    values = body["results"][0]["values"] if "results" in body else body[0]["values"]
    assert values["backend"]["env"] == {"API_TOKEN": "[secret]", "LOG_LEVEL": "info"}
    assert values["list"] == [{"name": "API_TOKEN", "value": "[secret]"}]
    assert SECRET_VALUE not in json.dumps(body)


IMAGE_CASES = [
    # (case, context_path, dockerfile_path, what the failure reason names)
    ("context outside the checkout", "../../etc/", "Dockerfile", "leaves the repository"),
    ("absolute context", "/etc/", "Dockerfile", "absolute"),
    ("Dockerfile outside the checkout", "backend/", "../../../etc/passwd", "leaves the repository"),
    ("symlinked context pointing out", "outside/", "Dockerfile", "outside the repository"),
]


@pytest.mark.parametrize(("case", "context", "dockerfile", "named"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_an_image_path_that_leaves_the_checkout_fails_before_any_build(
    settings, tmp_path, case, context, dockerfile, named
):
    # Given a repository with a backend/ image and a symlink outside/ -> / (a commit can add one)
    source = SourceRepo(tmp_path / "source", "base:1")
    os.symlink("/", source.root / "outside")
    commit = source.backend()
    settings.SOURCE_REPOSITORY_URL = source.url
    settings.BUILD_WORKDIR = tmp_path / "builds"
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"  # a build would fail otherwise: none starts
    make_release(commit_sha=commit)
    image = make_image("threek8s-backend", context_path=context, dockerfile_path=dockerfile)

    assert run_image_pipeline(image.pk) == ImageState.FAILED

    image.refresh_from_db()
    assert named in image.failure_reason, image.failure_reason
    assert "cannot reach the Docker engine" not in image.failure_reason  # refused before any engine call
    assert str(tmp_path) not in image.failure_reason


def test_credentials_in_the_source_url_never_reach_a_reason_a_label_or_the_api(settings, tmp_path):
    # Given a source URL carrying a token, on a host that does not answer
    token = "ghp_" + uuid.uuid4().hex
    settings.SOURCE_REPOSITORY_URL = f"https://deploy:{token}@127.0.0.1:9/org/repo.git"
    settings.SCRUBBED_SECRETS = (token,)
    settings.BUILD_WORKDIR = tmp_path / "builds"
    release = make_release()
    image = make_image("threek8s-backend")

    # When the pipeline fails to check it out
    assert run_image_pipeline(image.pk) == ImageState.FAILED

    # Then the reason names the repository without the token, and no served JSON holds it
    image.refresh_from_db()
    assert "https://127.0.0.1:9/org/repo.git" in image.failure_reason
    assert token not in image.failure_reason and token not in image.progress
    assert token not in served_text(APIClient())
    # And the labels a build would put on the image carry the URL without credentials
    labels = oci_labels(image, release, timezone.now())
    assert labels["org.opencontainers.image.source"] == "https://127.0.0.1:9/org/repo.git"


def test_configured_secrets_and_worker_paths_are_scrubbed_from_reasons(settings, tmp_path):
    settings.SCRUBBED_SECRETS = ("registry-password-123",)
    settings.SCRUBBED_PATHS = {str(tmp_path / "builds"): "<build dir>"}
    image = make_image("threek8s-backend", state=ImageState.PUSHING)

    fire_transition(
        DockerImage,
        image.pk,
        "fail",
        reason=f"push refused for registry-password-123 reading {tmp_path}/builds/image-1/export/x.tar",
    )

    image.refresh_from_db()
    assert image.failure_reason == "push refused for [redacted] reading <build dir>/image-1/export/x.tar"
    assert image.state_transitions.get().reason == image.failure_reason


def test_log_lines_are_scrubbed():
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(ScrubbingFilter(secrets=["s3cr3t-password"], paths={"/srv/worker/builds": "<build dir>"}))
    logger = logging.getLogger("tests.security.leaks")
    logger.addHandler(handler)
    try:
        logger.warning("cloning %s into %s", "https://bot:s3cr3t-password@git.example/x.git", "/srv/worker/builds/1")
    finally:
        logger.removeHandler(handler)
    assert records == ["cloning https://[redacted]@git.example/x.git into <build dir>/1"]
