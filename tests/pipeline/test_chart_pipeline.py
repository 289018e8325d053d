"""The chart pipeline against real helm and a real docker-registry: a valid chart ends indexed,
pullable with helm from the registry and from our chart repository; an invalid one ends invalid
listing every problem, with nothing pushed."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.cache import cache
from django.utils import timezone

from releases.charts import load_chart, package_chart, push_chart
from releases.choices import ChartState, EnvironmentScope, ImageState
from releases.models import EnvironmentVariable, HelmChart, ReleaseArtifact
from releases.oci import RegistryClient
from releases.pipelines.charts import package, rebuild_dependencies, run_chart_pipeline
from releases.tasks import publish_chart
from tests.fixtures.factories import digest_of, make_image, make_release
from tests.fixtures.helm import write_small_chart

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
    pytest.param(
        {"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"},
        "helm lint: [WARNING] templates/cm.yaml: object name does not conform",
        id="helm-lint-strict-warns",
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


# -- charts with dependencies, charts with metadata ---------------------------------------------------


def with_dependencies(chart_source: ChartSource, helm_bin: str, helm_home, dependencies: list[dict]) -> None:
    """Chart.yaml declares ``dependencies``; Chart.lock is what ``helm dependency update`` writes for
    them (the author's step); charts/ stays uncommitted, as in most repositories."""
    chart_dir = chart_source.root / "chart"
    metadata = yaml.safe_load(chart_source.read("Chart.yaml"))
    metadata["dependencies"] = dependencies
    (chart_dir / "Chart.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    updated = subprocess.run(
        [helm_bin, "dependency", "update", str(chart_dir), "--plain-http"],
        capture_output=True,
        text=True,
        env=helm_home,
    )
    assert updated.returncode == 0, updated.stderr
    shutil.rmtree(chart_dir / "charts")


@pytest.fixture
def fresh_index_cache():
    """The index cache is keyed by a generation counter that restarts when a transactional test
    empties the database; an index cached by an earlier test must not answer for this one."""
    cache.clear()
    yield
    cache.clear()


def index_in_our_repository(name: str, version: str, config_map: str, tmp_path: Path) -> bytes:
    """A chart indexed by this service, so /charts/ serves it."""
    packaged = package_chart(write_small_chart(tmp_path / f"{name}-source", name, version, config_map))
    HelmChart.objects.create(
        name=name,
        chart_version=version,
        app_version=version,
        state=ChartState.INDEXED,
        digest=digest_of(f"{name}:{version}"),
        package=packaged.data,
        package_digest=packaged.digest,
        indexed_at=timezone.now(),
    )
    return packaged.data


@pytest.fixture
def our_chart_repository_allowed(settings, oci_registry, live_server):
    """This service's own /charts/ is a chart repository a chart may depend on; here it is the live
    server on loopback, which only CHART_DEPENDENCY_HOSTS can allow (with the registry: the
    allowlist is all there is)."""
    settings.CHART_DEPENDENCY_HOSTS = [oci_registry.host, urlsplit(live_server.url).netloc]


def test_chart_with_dependencies_from_a_registry_and_a_chart_repository_is_published_with_them(
    chart_source,
    pushed_sub_chart,
    live_server,
    our_chart_repository_allowed,
    fresh_index_cache,
    helm_bin,
    helm_home,
    tmp_path,
):
    # Given sub from an OCI registry (helm push) and common from this service's own /charts/, locked
    sub_repository, sub_archive = pushed_sub_chart
    common_archive = index_in_our_repository("common", "0.3.0", "from-common", tmp_path)
    charts_url = f"{live_server.url}/charts"
    with_dependencies(
        chart_source,
        helm_bin,
        helm_home,
        [
            {"name": "sub", "version": "^0.1.0", "repository": sub_repository},
            {"name": "common", "version": "~0.3.0", "repository": charts_url, "condition": "common.enabled"},
        ],
    )
    lock_digest = yaml.safe_load(chart_source.read("Chart.lock"))["digest"]
    chart = plan_chart(chart_source.commit())

    # When the chart is published
    assert run_chart_pipeline(chart.pk) == ChartState.INDEXED, HelmChart.objects.get(pk=chart.pk).problems

    # Then each dependency is recorded as Chart.lock pins it, with the digest of the archive packaged
    chart.refresh_from_db()
    recorded = {d.name: d for d in chart.dependencies.all()}
    assert {name: (d.version, d.repository, d.locked_version, d.lock_digest) for name, d in recorded.items()} == {
        "sub": ("^0.1.0", sub_repository, "0.1.0", lock_digest),
        "common": ("~0.3.0", charts_url, "0.3.0", lock_digest),
    }
    assert recorded["sub"].archive_digest == "sha256:" + hashlib.sha256(sub_archive).hexdigest()
    assert recorded["common"].archive_digest == "sha256:" + hashlib.sha256(common_archive).hexdigest()
    assert recorded["common"].condition == "common.enabled"
    with tarfile.open(fileobj=io.BytesIO(bytes(chart.package)), mode="r:gz") as archive:
        assert archive.extractfile("threek8s/charts/sub-0.1.0.tgz").read() == sub_archive
        assert archive.extractfile("threek8s/charts/common-0.3.0.tgz").read() == common_archive
        assert "threek8s/Chart.lock" in archive.getnames()
    (tmp_path / "published.tgz").write_bytes(bytes(chart.package))
    rendered = subprocess.run(
        [helm_bin, "template", str(tmp_path / "published.tgz")], check=True, capture_output=True, text=True
    ).stdout
    assert "name: from-sub" in rendered and "name: from-common" in rendered

    # And a resumed packaging (a fresh checkout, dependencies fetched again) gives the same bytes
    fresh = tmp_path / "resumed"
    subprocess.run(["git", "clone", "-q", str(chart_source.root), str(fresh)], check=True)
    loaded = load_chart(fresh / "chart", expected_name="threek8s", expected_app_version="1.0.0")
    rebuild_dependencies(chart, loaded, fresh / "chart")
    assert package(chart, fresh / "chart").digest == chart.package_digest


def test_chart_whose_lock_does_not_match_chart_yaml_ends_invalid_naming_it(
    chart_source, pushed_sub_chart, settings, helm_bin, helm_home
):
    # Given Chart.yaml's constraint was edited after Chart.lock was written
    sub_repository, _ = pushed_sub_chart
    with_dependencies(
        chart_source, helm_bin, helm_home, [{"name": "sub", "version": "^0.1.0", "repository": sub_repository}]
    )
    chart_yaml = chart_source.read("Chart.yaml").replace("^0.1.0", "~0.1.0")
    chart = plan_chart(chart_source.commit({"Chart.yaml": chart_yaml}))

    # When it is published
    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    # Then it is refused naming Chart.lock, and nothing is stored or pushed
    chart.refresh_from_db()
    assert any(p.startswith("Chart.lock: does not match Chart.yaml") for p in chart.problems), chart.problems
    assert not chart.dependencies.exists() and chart.chart_metadata == {} and not chart.package_digest
    with registry(settings) as client:
        assert client.list_tags(chart_repository(settings)) == []


def test_chart_depending_on_the_workers_own_network_ends_invalid_without_a_request(
    chart_source, settings, silent_listener
):
    # Given Chart.yaml takes dependencies from the metadata endpoint, a private address and a port
    # of the worker's loopback, locked (the lock is never used: nothing is fetched)
    dependencies = {
        "metadata": "http://169.254.169.254/latest/meta-data",
        "redis": "https://10.0.0.5/charts",
        "admin": f"http://localhost:{silent_listener.port}/charts",
    }
    metadata = yaml.safe_load(chart_source.read("Chart.yaml"))
    metadata["dependencies"] = [{"name": n, "version": "1.0.0", "repository": r} for n, r in dependencies.items()]
    lock = {"dependencies": metadata["dependencies"], "digest": "sha256:" + "0" * 64, "generated": "2025-01-01"}
    chart = plan_chart(
        chart_source.commit({"Chart.yaml": yaml.safe_dump(metadata), "Chart.lock": yaml.safe_dump(lock)})
    )

    # When it is published
    assert run_chart_pipeline(chart.pk) == ChartState.INVALID

    # Then every one is refused saying why and what to do, none was contacted, nothing is stored or pushed
    chart.refresh_from_db()
    advice = (
        "chart dependencies may only come from public hosts or CHART_DEPENDENCY_HOSTS; take it from a public "
        "repository, or ask the operator to list its host in CHART_DEPENDENCY_HOSTS"
    )
    metadata_endpoint, private, loopback = [p for p in chart.problems if p.startswith("Chart.yaml: dependency")]
    assert metadata_endpoint == (
        "Chart.yaml: dependency metadata: repository http://169.254.169.254/latest/meta-data is on a link-local "
        f"address (169.254.169.254); {advice}"
    )
    assert private == (
        f"Chart.yaml: dependency redis: repository https://10.0.0.5/charts is on a private address (10.0.0.5); {advice}"
    )
    assert loopback.startswith(
        f"Chart.yaml: dependency admin: repository http://localhost:{silent_listener.port}/charts is on localhost, "
        "which resolves to a loopback address (127.0.0.1"  # and ::1, where /etc/hosts says so
    )
    assert loopback.endswith(advice)
    assert not silent_listener.was_contacted()
    assert not chart.dependencies.exists() and chart.chart_metadata == {} and not chart.package_digest
    with registry(settings) as client:
        assert client.list_tags(chart_repository(settings)) == []


def test_index_carries_the_chart_metadata_and_helm_searches_it(
    chart_source, live_server, fresh_index_cache, helm_bin, helm_home
):
    # Given a chart whose Chart.yaml says who keeps it, where it lives, and that it is deprecated
    metadata = {
        "home": "https://threek8s.example.com",
        "sources": ["https://github.com/stianfro/threek8s"],
        "keywords": ["kubernetes", "zebracorn"],
        "maintainers": [{"name": "Stian", "email": "stian@example.com", "url": "https://example.com/stian"}],
        "icon": "https://threek8s.example.com/icon.png",
        "annotations": {"artifacthub.io/license": "MIT", "category": "demo"},
        "kubeVersion": ">=1.25.0-0",
        "deprecated": True,
    }
    chart_yaml = yaml.safe_load(chart_source.read("Chart.yaml"))
    chart = plan_chart(chart_source.commit({"Chart.yaml": yaml.safe_dump({**chart_yaml, **metadata})}))
    assert run_chart_pipeline(chart.pk) == ChartState.INDEXED, HelmChart.objects.get(pk=chart.pk).problems

    # When helm adds our repository and searches it by a keyword only Chart.yaml holds
    subprocess.run(
        [helm_bin, "repo", "add", "threek8s", f"{live_server.url}/charts/"],
        check=True,
        capture_output=True,
        env=helm_home,
    )
    found = subprocess.run(
        [helm_bin, "search", "repo", "zebracorn", "-o", "yaml"],
        check=True,
        capture_output=True,
        text=True,
        env=helm_home,
    ).stdout

    # Then helm finds the chart, and the index helm downloaded carries every field as helm repo index writes it
    assert [entry["name"] for entry in yaml.safe_load(found)] == ["threek8s/threek8s"]
    cached = Path(helm_home["HELM_REPOSITORY_CACHE"]) / "threek8s-index.yaml"
    (entry,) = yaml.safe_load(cached.read_text())["entries"]["threek8s"]
    assert {key: entry[key] for key in metadata} == metadata
    assert entry["type"] == "application"
    assert HelmChart.objects.get(pk=chart.pk).chart_metadata == {**metadata, "type": "application"}
