"""The chart pipeline against real helm and a real docker-registry: a valid chart ends indexed,
pullable with helm from the registry and from our chart repository; an invalid one ends invalid
listing every problem, with nothing pushed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from releases.charts import package_chart, push_chart
from releases.choices import ChartState, EnvironmentScope, ImageState
from releases.models import EnvironmentVariable, HelmChart, ReleaseArtifact
from releases.oci import RegistryClient
from releases.pipelines.charts import run_chart_pipeline
from releases.tasks import publish_chart
from tests.fixtures.factories import make_image, make_release

pytestmark = [pytest.mark.django_db, pytest.mark.services]

EXAMPLE_CHART = Path(__file__).resolve().parents[2] / "examples" / "chart"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


class ChartSource:
    """A git repository holding the example chart at chart/, committed as each test needs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(EXAMPLE_CHART, root / "chart")
        git(root, "init", "-q", "-b", "main")

    def commit(self, edits: dict[str, str] | None = None) -> str:
        for name, text in (edits or {}).items():
            (self.root / "chart" / name).parent.mkdir(parents=True, exist_ok=True)
            (self.root / "chart" / name).write_text(text)
        git(self.root, "add", "-A")
        git(
            self.root,
            "-c",
            "user.email=ci@example.com",
            "-c",
            "user.name=CI",
            "commit",
            "-q",
            "-m",
            "chart",
            "--allow-empty",
        )
        return git(self.root, "rev-parse", "HEAD")

    def read(self, name: str) -> str:
        return (self.root / "chart" / name).read_text()


@pytest.fixture
def chart_source(settings, tmp_path, oci_registry, helm_bin) -> ChartSource:
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/c{uuid.uuid4().hex[:10]}"
    settings.HELM_BIN = helm_bin
    settings.BUILD_WORKDIR = tmp_path / "builds"
    source = ChartSource(tmp_path / "source")
    settings.SOURCE_REPOSITORY_URL = f"file://{source.root}"
    return source


def plan_chart(commit_sha: str, version: str = "1.0.0", *, images: str = ImageState.AVAILABLE) -> HelmChart:
    make_release(version, commit_sha=commit_sha)
    make_image("threek8s-frontend", version, images)
    make_image("threek8s-backend", version, images)
    return HelmChart.objects.create(chart_version=version, app_version=version)


def registry(settings) -> RegistryClient:
    return RegistryClient(settings.REGISTRY_NAMESPACE.split("/", 1)[0])


def chart_repository(settings) -> str:
    return f"{settings.REGISTRY_NAMESPACE.split('/', 1)[1]}/chart/threek8s"


def test_valid_chart_ends_indexed_and_helm_pulls_the_same_bytes(chart_source, settings, helm_bin, helm_home, tmp_path):
    chart = plan_chart(chart_source.commit())

    assert publish_chart.apply(args=[chart.pk]).get() == ChartState.INDEXED

    chart.refresh_from_db()
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    subprocess.run(
        [
            helm_bin,
            "pull",
            f"oci://{settings.REGISTRY_NAMESPACE}/chart/threek8s",
            "--version",
            "1.0.0",
            "--plain-http",
            "--destination",
            str(pulled),
        ],
        check=True,
        capture_output=True,
        env=helm_home,
    )
    data = (pulled / "threek8s-1.0.0.tgz").read_bytes()
    assert data == bytes(chart.package)
    assert "sha256:" + hashlib.sha256(data).hexdigest() == chart.package_digest
    with registry(settings) as client:
        assert client.head_manifest(chart_repository(settings), "1.0.0").digest == chart.digest
    rendered = subprocess.run(
        [helm_bin, "template", str(pulled / "threek8s-1.0.0.tgz")],
        check=True,
        capture_output=True,
        text=True,
        env=helm_home,
    ).stdout
    assert "kind: Deployment" in rendered
    assert chart.templates and chart.values["frontend"]["replicaCount"] == 1
    assert ReleaseArtifact.objects.get(helm_chart=chart).uri == chart.pinned_uri


def test_chart_repository_serves_index_and_packages_to_real_helm(
    chart_source, live_server, helm_bin, helm_home, tmp_path
):
    chart = plan_chart(chart_source.commit())
    run_chart_pipeline(chart.pk)
    chart.refresh_from_db()

    helm = [helm_bin]
    subprocess.run(
        [*helm, "repo", "add", "threek8s", f"{live_server.url}/charts/"], check=True, capture_output=True, env=helm_home
    )
    found = subprocess.run(
        [*helm, "search", "repo", "threek8s", "-o", "yaml"], check=True, capture_output=True, text=True, env=helm_home
    ).stdout
    assert {"name": "threek8s/threek8s", "version": "1.0.0"}.items() <= yaml.safe_load(found)[0].items()
    subprocess.run(
        [*helm, "pull", "threek8s/threek8s", "--version", "1.0.0", "--destination", str(tmp_path)],
        check=True,
        capture_output=True,
        env=helm_home,
    )
    assert (tmp_path / "threek8s-1.0.0.tgz").read_bytes() == bytes(chart.package)


def test_index_is_cached_until_a_chart_is_indexed_and_answers_etags(chart_source, client):
    first = client.get("/charts/index.yaml")
    assert client.get("/charts/index.yaml", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304

    chart = plan_chart(chart_source.commit())
    run_chart_pipeline(chart.pk)

    second = client.get("/charts/index.yaml")
    assert second["ETag"] != first["ETag"]
    assert yaml.safe_load(second.content)["entries"]["threek8s"][0]["version"] == "1.0.0"


INVALID = [
    pytest.param({"values.yaml": "frontend: [unclosed\n"}, "values.yaml", id="invalid-yaml"),
    pytest.param(
        {"templates/broken.yaml": "{{ .Values.nope.missing }}\n"}, "nil pointer", id="template-fails-to-render"
    ),
    pytest.param(
        {"templates/bad-service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  portz: []\n"},
        "portz",
        id="kubernetes-would-reject",
    ),
]


@pytest.mark.parametrize(("edits", "words"), INVALID)
def test_invalid_chart_ends_invalid_and_pushes_nothing(chart_source, settings, edits, words):
    chart = plan_chart(chart_source.commit(edits))

    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    chart.refresh_from_db()
    assert any(words in problem for problem in chart.problems), chart.problems
    with registry(settings) as client:
        assert client.list_tags(chart_repository(settings)) == []


def test_every_problem_is_listed_not_only_the_first(chart_source, settings):
    EnvironmentVariable.objects.create(
        name="DB_PASSWORD",
        default_value="",
        description="db",
        required=True,
        secret=True,
        scope=EnvironmentScope.BACKEND,
    )
    chart_yaml = chart_source.read("Chart.yaml").replace("apiVersion: v2", "apiVersion: v1")
    values = chart_source.read("values.yaml").replace("LOG_LEVEL: info", "LOG_LEVEL: info\n    DB_PASSWORD: hunter2", 1)
    chart = plan_chart(
        chart_source.commit({"Chart.yaml": chart_yaml, "values.yaml": values}), images=ImageState.PUSHING
    )
    chart.environment_variables.set(EnvironmentVariable.objects.all())

    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    problems = " | ".join(HelmChart.objects.get(pk=chart.pk).problems)
    assert "apiVersion" in problems
    assert "DB_PASSWORD" in problems
    assert "is pushing, not available" in problems


def test_republishing_a_chart_version_with_other_content_is_refused(chart_source, settings, tmp_path):
    # Given the registry already holds chart 1.0.0 with other content
    other = tmp_path / "other-chart"
    shutil.copytree(EXAMPLE_CHART, other)
    values = other / "values.yaml"
    values.write_text(values.read_text().replace("replicaCount: 1", "replicaCount: 3", 1))
    packaged = package_chart(other)
    with registry(settings) as client:
        before = push_chart(
            client, chart_repository(settings), packaged, {"name": "threek8s", "version": "1.0.0", "apiVersion": "v2"}
        ).digest
    chart = plan_chart(chart_source.commit())

    # When our chart 1.0.0 is published
    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    # Then it is refused and the registry still serves the other content
    chart.refresh_from_db()
    assert any(f"already points to {before}" in problem for problem in chart.problems), chart.problems
    with registry(settings) as client:
        assert client.head_manifest(chart_repository(settings), "1.0.0").digest == before
