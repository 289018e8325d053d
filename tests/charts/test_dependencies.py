"""build_dependencies and lint_chart: real helm against a real docker-registry, offline."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import yaml

from releases.charts import build_dependencies, lint_chart, lint_findings, load_chart, package_chart, render_chart
from tests.charts.conftest import copy_chart, run_helm

pytestmark = pytest.mark.services


def depend_on(chart: Path, repository: str, version: str = "^0.1.0") -> None:
    metadata = yaml.safe_load((chart / "Chart.yaml").read_text())
    metadata["dependencies"] = [{"name": "sub", "version": version, "repository": repository}]
    (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))


def lock(chart: Path, helm_bin: str, helm_home: dict[str, str]) -> None:
    """``helm dependency update`` as the chart's author does, then only Chart.lock is kept (charts/
    is not committed)."""
    run_helm(helm_bin, helm_home, "dependency", "update", str(chart), "--plain-http")
    for archive in (chart / "charts").iterdir():
        archive.unlink()
    (chart / "charts").rmdir()


def load(chart: Path):
    return load_chart(chart, expected_name="threek8s", expected_app_version="1.0.0")


def test_oci_dependency_is_fetched_pinned_and_packaged(oci_registry, pushed_sub_chart, helm_bin, helm_home, tmp_path):
    # Given a chart depending on sub from the registry (on loopback here, trusted as the pipeline
    # trusts the registry of REGISTRY_NAMESPACE), locked by its author
    repository, archive = pushed_sub_chart
    chart = copy_chart(tmp_path / "threek8s")
    depend_on(chart, repository)
    lock(chart, helm_bin, helm_home)
    lock_digest = yaml.safe_load((chart / "Chart.lock").read_text())["digest"]

    # When the worker builds its dependencies in its own helm home
    built = build_dependencies(
        helm_bin, chart, load(chart).dependencies, helm_home=tmp_path / "worker-helm", trusted_hosts=[oci_registry.host]
    )

    # Then what Chart.lock pins is in charts/, recorded with the archive's digest, and packaged
    assert built.problems == []
    assert built.lock_digest == lock_digest
    (sub,) = built.locked
    assert (sub.name, sub.version, sub.repository) == ("sub", "0.1.0", repository)
    assert sub.archive_digest == "sha256:" + hashlib.sha256(archive).hexdigest()
    packaged = package_chart(chart)
    with tarfile.open(fileobj=io.BytesIO(packaged.data), mode="r:gz") as tar:
        names = tar.getnames()
        assert tar.extractfile("threek8s/charts/sub-0.1.0.tgz").read() == archive
    assert "threek8s/Chart.lock" in names
    rendered = render_chart(helm_bin, chart)
    assert "from-sub" in {doc["metadata"]["name"] for doc in rendered}


def test_lock_out_of_sync_with_chart_yaml_is_refused_naming_it(
    oci_registry, pushed_sub_chart, helm_bin, helm_home, tmp_path
):
    repository, _ = pushed_sub_chart
    chart = copy_chart(tmp_path / "threek8s")
    depend_on(chart, repository)
    lock(chart, helm_bin, helm_home)
    depend_on(chart, repository, version="~0.1.0")  # edited after locking, Chart.lock not updated

    built = build_dependencies(
        helm_bin, chart, load(chart).dependencies, helm_home=tmp_path / "worker-helm", trusted_hosts=[oci_registry.host]
    )

    assert len(built.problems) == 1, built.problems
    assert built.problems[0].startswith("Chart.lock: does not match Chart.yaml")
    assert "helm dependency update" in built.problems[0]
    assert str(tmp_path) not in built.problems[0]
    assert not (chart / "charts").exists() or not any((chart / "charts").iterdir())


@pytest.mark.parametrize(
    ("lock_text", "words"),
    [
        (None, "Chart.lock: not found, but Chart.yaml has dependencies (sub)"),
        ("dependencies: []\ndigest: sha256:00\n", "Chart.lock: does not lock dependency sub of Chart.yaml"),
        (
            "dependencies:\n- name: sub\n  version: 0.1.0\n  repository: oci://elsewhere.example/deps\n"
            "- name: extra\n  version: 1.0.0\n  repository: https://charts.example.com\ndigest: sha256:00\n",
            "Chart.lock: locks dependency sub from oci://elsewhere.example/deps but Chart.yaml takes it from",
        ),
        ("dependencies: {}\n", "Chart.lock: must hold a digest and a list of dependencies"),
    ],
    ids=["missing", "not-locked", "other-repository", "malformed"],
)
def test_lock_that_does_not_pin_chart_yaml_is_refused_before_helm_runs(tmp_path, lock_text, words):
    chart = copy_chart(tmp_path / "threek8s")
    depend_on(chart, "oci://127.0.0.1:9/deps")
    if lock_text is not None:
        (chart / "Chart.lock").write_text(lock_text)

    built = build_dependencies("/nonexistent/helm", chart, load(chart).dependencies, helm_home=tmp_path / "h")

    assert any(words in problem for problem in built.problems), built.problems
    if "extra" in (lock_text or ""):
        assert any("locks extra, which Chart.yaml does not declare" in p for p in built.problems)


@pytest.mark.parametrize("repository", ["file://../common", "@bitnami", "ftp://charts.example.com"])
def test_repositories_that_read_outside_the_chart_are_refused(tmp_path, repository):
    chart = copy_chart(tmp_path / "threek8s")
    depend_on(chart, repository)
    (chart / "Chart.lock").write_text(
        f"dependencies:\n- name: sub\n  version: 0.1.0\n  repository: '{repository}'\ndigest: sha256:00\n"
    )

    built = build_dependencies("/nonexistent/helm", chart, load(chart).dependencies, helm_home=tmp_path / "h")

    assert any(f"repository {repository!r} is not a chart repository" in p for p in built.problems), built.problems


def test_chart_without_dependencies_costs_nothing(tmp_path):
    chart = copy_chart(tmp_path / "threek8s")
    built = build_dependencies("/nonexistent/helm", chart, [], helm_home=tmp_path / "h")
    assert (built.problems, built.locked) == ([], [])


def test_lint_findings_are_warnings_and_errors_with_their_details(tmp_path):
    output = (
        "==> Linting /work/x/chart\n"
        "[INFO] Chart.yaml: icon is recommended\n"
        "[WARNING] /work/x/chart: chart directory is missing these dependencies: sub\n"
        "[ERROR] templates/: threek8s/templates/bad.yaml:4:18\n"
        '  executing "threek8s/templates/bad.yaml" at <.Values.nothere.foo>:\n'
        "    nil pointer evaluating interface {}.foo\n"
        "\n"
        "Error: 1 chart(s) linted, 1 chart(s) failed\n"
    )
    assert lint_findings(output, Path("/work/x/chart")) == [
        "helm lint: [WARNING] chart: chart directory is missing these dependencies: sub",
        'helm lint: [ERROR] templates/: threek8s/templates/bad.yaml:4:18 executing "threek8s/templates/bad.yaml" '
        "at <.Values.nothere.foo>: nil pointer evaluating interface {}.foo",
    ]


def test_lint_strict_lists_what_only_helm_lint_sees(helm_bin, tmp_path):
    chart = copy_chart(tmp_path / "threek8s")
    assert lint_chart(helm_bin, chart, kube_version="1.31.0", helm_home=tmp_path / "h") == []

    (chart / "templates" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    findings = lint_chart(helm_bin, chart, kube_version="1.31.0", helm_home=tmp_path / "h")

    assert len(findings) == 1
    assert findings[0].startswith("helm lint: [WARNING] templates/cm.yaml: object name does not conform")
