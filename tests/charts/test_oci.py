"""push_chart against a real docker-registry, pulled back with real ``helm pull``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from releases.charts import load_chart, oci_tag, package_chart, push_chart
from releases.oci import RegistryClient, TagConflict
from releases.oci.media_types import HELM_CHART_CONTENT, HELM_CONFIG, OCI_MANIFEST
from releases.sandbox.registry import RunningRegistry
from tests.charts.conftest import EXAMPLE_CHART, run_helm

pytestmark = pytest.mark.services


@pytest.fixture
def client(oci_registry: RunningRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(oci_registry.host, retries=0) as registry_client:
        yield registry_client


def blob_files(registry: RunningRegistry) -> set[str]:
    """Every blob the registry stores (content-addressed files under the storage root)."""
    blobs = registry.root / "docker" / "registry" / "v2" / "blobs"
    return {str(path.relative_to(blobs)) for path in blobs.rglob("data")} if blobs.exists() else set()


def chart_metadata(chart_dir: Path) -> dict:
    return load_chart(chart_dir, expected_name="threek8s", expected_app_version="1.0.0").metadata


def helm_pull(helm_bin: str, env: dict[str, str], ref: str, version: str, dest: Path) -> bytes:
    dest.mkdir(parents=True, exist_ok=True)
    run_helm(helm_bin, env, "pull", ref, "--version", version, "--plain-http", "--destination", str(dest))
    (archive,) = dest.glob("*.tgz")
    return archive.read_bytes()


def test_push_then_helm_pull_returns_identical_bytes(
    client: RegistryClient, oci_registry: RunningRegistry, helm_bin: str, helm_home: dict[str, str], tmp_path: Path
) -> None:
    packaged = package_chart(EXAMPLE_CHART)
    pushed = push_chart(client, "charts-a/threek8s", packaged, chart_metadata(EXAMPLE_CHART))
    assert pushed.created and pushed.tag == "1.0.0" and pushed.size == packaged.size

    served = client.head_manifest("charts-a/threek8s", "1.0.0")
    assert served is not None and served.digest == pushed.digest and served.media_type == OCI_MANIFEST

    body, _media_type, _digest = client.get_manifest("charts-a/threek8s", "1.0.0")
    manifest = json.loads(body)
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_CHART_CONTENT]
    assert manifest["layers"][0]["digest"] == packaged.digest
    assert manifest["annotations"]["org.opencontainers.image.title"] == "threek8s"
    assert manifest["annotations"]["org.opencontainers.image.version"] == "1.0.0"

    pulled = helm_pull(helm_bin, helm_home, f"oci://{oci_registry.host}/charts-a/threek8s", "1.0.0", tmp_path / "pull")
    assert pulled == packaged.data
    shown = run_helm(
        helm_bin,
        helm_home,
        "show",
        "chart",
        f"oci://{oci_registry.host}/charts-a/threek8s",
        "--version",
        "1.0.0",
        "--plain-http",
    ).stdout
    assert "name: threek8s" in shown


def test_repush_same_content_is_a_noop(client: RegistryClient, oci_registry: RunningRegistry) -> None:
    packaged = package_chart(EXAMPLE_CHART)
    metadata = chart_metadata(EXAMPLE_CHART)
    first = push_chart(client, "charts-b/threek8s", packaged, metadata)
    blobs_before = blob_files(oci_registry)
    again = push_chart(client, "charts-b/threek8s", package_chart(EXAMPLE_CHART), metadata)
    assert again.digest == first.digest
    assert not again.created
    assert blob_files(oci_registry) == blobs_before


def test_other_content_same_version_is_refused_and_writes_nothing(
    client: RegistryClient,
    oci_registry: RunningRegistry,
    helm_bin: str,
    helm_home: dict[str, str],
    example_chart: Path,
    tmp_path: Path,
) -> None:
    original = package_chart(EXAMPLE_CHART)
    first = push_chart(client, "charts-c/threek8s", original, chart_metadata(EXAMPLE_CHART))

    (example_chart / "values.yaml").write_text(
        (example_chart / "values.yaml").read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    )
    changed = package_chart(example_chart)
    assert changed.version == original.version and changed.digest != original.digest
    blobs_before = blob_files(oci_registry)

    with pytest.raises(TagConflict) as caught:
        push_chart(client, "charts-c/threek8s", changed, chart_metadata(example_chart))
    assert caught.value.existing_digest == first.digest

    served = client.head_manifest("charts-c/threek8s", "1.0.0")
    assert served is not None and served.digest == first.digest
    assert blob_files(oci_registry) == blobs_before
    assert not client.blob_exists("charts-c/threek8s", changed.digest)
    pulled = helm_pull(helm_bin, helm_home, f"oci://{oci_registry.host}/charts-c/threek8s", "1.0.0", tmp_path / "p")
    assert pulled == original.data


def test_build_metadata_version_uses_underscore_tag(
    client: RegistryClient,
    oci_registry: RunningRegistry,
    helm_bin: str,
    helm_home: dict[str, str],
    example_chart: Path,
    tmp_path: Path,
) -> None:
    chart_yaml = example_chart / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("version: 1.0.0", "version: 1.0.1+build.7"))
    packaged = package_chart(example_chart)
    pushed = push_chart(client, "charts-d/threek8s", packaged, chart_metadata(example_chart))
    assert pushed.tag == oci_tag("1.0.1+build.7") == "1.0.1_build.7"
    assert client.list_tags("charts-d/threek8s") == ["1.0.1_build.7"]
    pulled = helm_pull(
        helm_bin, helm_home, f"oci://{oci_registry.host}/charts-d/threek8s", "1.0.1+build.7", tmp_path / "pull"
    )
    assert pulled == packaged.data


def test_same_chart_same_manifest_digest_in_two_repositories(client: RegistryClient) -> None:
    packaged = package_chart(EXAMPLE_CHART)
    metadata = chart_metadata(EXAMPLE_CHART)
    assert (
        push_chart(client, "charts-e/threek8s", packaged, metadata).digest
        == push_chart(client, "charts-f/threek8s", packaged, metadata).digest
    )


def test_metadata_must_match_the_archive(client: RegistryClient) -> None:
    packaged = package_chart(EXAMPLE_CHART)
    metadata = dict(chart_metadata(EXAMPLE_CHART), version="2.0.0")
    with pytest.raises(ValueError, match="pass the metadata of the packaged chart"):
        push_chart(client, "charts-g/threek8s", packaged, metadata)
