"""Build, export and scan against the session's real dockerd (vfs, offline, local registry)."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import docker
import pytest

from releases.imagebuild import (
    REQUIRED_OCI_LABELS,
    BuildFailed,
    EngineUnavailable,
    ExportedImage,
    build_paths,
    build_platform_image,
    connect_engine,
    export_image,
    scan_image,
    severity_at_least,
)
from releases.oci import build_index
from tests.fixtures.base_image import BaseImage

pytestmark = pytest.mark.services

OCI_LABELS = {
    "org.opencontainers.image.version": "1.2.3",
    "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
    "org.opencontainers.image.source": "https://git.example.com/team/app",
    "org.opencontainers.image.created": "2024-05-06T07:08:09Z",
}
PEM_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest\n-----END RSA PRIVATE KEY-----\n"
AWS_KEY = "AKIA" + "Q7RZ2TESTKEY4XYZ"


def _context(directory: Path, dockerfile: str, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(dockerfile)
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(content)
    return directory


def _build(
    client: docker.DockerClient,
    context: Path,
    platform: str,
    labels: dict[str, str] | None = None,
    pull: bool = True,
) -> tuple[str, list[str]]:
    logs: list[str] = []
    image_id = build_platform_image(client, context, "Dockerfile", platform, labels or {}, logs.append, pull)
    return image_id, logs


class MultiArch:
    def __init__(self) -> None:
        self.images: dict[str, ExportedImage] = {}
        self.again: dict[str, ExportedImage] = {}
        self.logs: dict[str, list[str]] = {}
        self.timings: dict[str, tuple[float, float]] = {}


@pytest.fixture(scope="module")
def multiarch(
    docker_engine: docker.DockerClient,
    multiarch_base_image: BaseImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> MultiArch:
    """The same context built for linux/amd64 and linux/arm64 from the multi-arch base, exported twice."""
    root = tmp_path_factory.mktemp("multiarch")
    context = _context(
        root / "context",
        f"FROM {multiarch_base_image.reference}\n"
        "COPY hello.txt /srv/hello.txt\n"
        "LABEL org.example.stage=test\n"
        "USER 65534:65534\n",
        {"hello.txt": "hello from the test\n"},
    )
    result = MultiArch()
    for platform in ("linux/amd64", "linux/arm64"):
        started = time.monotonic()
        image_id, logs = _build(docker_engine, context, platform, OCI_LABELS)
        built = time.monotonic()
        name = platform.replace("/", "-")
        result.images[platform] = export_image(docker_engine, image_id, root / f"{name}-1")
        result.timings[platform] = (built - started, time.monotonic() - built)
        result.again[platform] = export_image(docker_engine, image_id, root / f"{name}-2")
        result.logs[platform] = logs
    return result


@pytest.mark.parametrize(
    ("platform", "architecture", "variant"), [("linux/amd64", "amd64", None), ("linux/arm64", "arm64", "v8")]
)
def test_multiarch_build_and_export(
    multiarch: MultiArch,
    multiarch_base_image: BaseImage,
    platform: str,
    architecture: str,
    variant: str | None,
) -> None:
    image = multiarch.images[platform]
    build_seconds, export_seconds = multiarch.timings[platform]
    print(f"{platform}: build {build_seconds:.2f}s, export {export_seconds:.2f}s")  # visible with -s
    assert (image.os, image.architecture, image.variant) == ("linux", architecture, variant)
    config = json.loads(image.config_bytes)
    assert config["architecture"] == architecture
    assert image.labels == {**OCI_LABELS, "org.example.stage": "test"}
    assert image.user == "65534:65534"
    # Base layer + COPY layer; the base layer's diff_id is the one the base image was pushed with.
    assert len(image.layers) == 3  # the base's two (shared, busybox of the platform) and the COPY
    assert image.diff_ids == config["rootfs"]["diff_ids"]
    assert image.diff_ids[0] == multiarch_base_image.diff_id
    # Deterministic export.
    again = multiarch.again[platform]
    assert again.manifest_digest == image.manifest_digest
    assert again.manifest_bytes == image.manifest_bytes
    assert [blob.digest for blob in again.layers] == [blob.digest for blob in image.layers]
    # Build logs streamed, including the pull from the local insecure registry.
    logs = multiarch.logs[platform]
    assert any(line.startswith("Step 1/") and multiarch_base_image.reference in line for line in logs)
    assert any("COPY hello.txt /srv/hello.txt" in line for line in logs)
    assert any("Successfully built" in line for line in logs)
    # A clean image: nothing at all to report.
    assert scan_image(image, list(REQUIRED_OCI_LABELS), 50 * 2**20) == []


def test_multiarch_images_form_an_index(multiarch: MultiArch) -> None:
    amd64, arm64 = multiarch.images["linux/amd64"], multiarch.images["linux/arm64"]
    assert amd64.manifest_digest != arm64.manifest_digest
    # The shared base layer exports to the same blob for both (the COPY layers differ: the classic
    # builder stamps directory mtimes with the build time).
    assert amd64.layers[0].digest == arm64.layers[0].digest
    index = json.loads(build_index([amd64.platform_manifest(), arm64.platform_manifest()]))
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}


def test_scratch_cache_does_not_mix_platforms(docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    """The classic builder's cache ignores the platform for FROM scratch; the engine module rebuilds."""
    context = _context(tmp_path / "ctx", "FROM scratch\nCOPY a.txt /a.txt\n", {"a.txt": "same\n"})
    amd64, _ = _build(docker_engine, context, "linux/amd64", pull=False)
    arm64, logs = _build(docker_engine, context, "linux/arm64", pull=False)
    assert amd64 != arm64
    assert docker_engine.api.inspect_image(arm64)["Architecture"] == "arm64"
    assert any("rebuilding without cache" in line for line in logs)


def test_broken_dockerfile(docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    context = _context(
        tmp_path / "ctx",
        "FROM scratch\nCOPY present.txt /present.txt\nCOPY missing.txt /x\n",
        {"present.txt": "x"},
    )
    logs: list[str] = []
    with pytest.raises(BuildFailed) as info:
        build_platform_image(docker_engine, context, "Dockerfile", "linux/amd64", {}, logs.append, pull=False)
    message = str(info.value)
    assert "failed at 'Step 3/3 : COPY missing.txt /x'" in message
    assert "missing.txt" in message.splitlines()[0]
    assert "last " in message and "Step 1/3 : FROM scratch" in message
    assert info.value.step == "Step 3/3 : COPY missing.txt /x"
    assert logs[0] == "Step 1/3 : FROM scratch"
    assert logs[-1].startswith("ERROR: ")
    assert not info.value.transient


def test_unknown_instruction_and_missing_base(
    docker_engine: docker.DockerClient, oci_registry: object, tmp_path: Path
) -> None:
    context = _context(tmp_path / "syntax", "FROMM scratch\n", {})
    with pytest.raises(BuildFailed, match="(?i)unknown instruction: FROMM"):
        _build(docker_engine, context, "linux/amd64", pull=False)
    host = oci_registry.host  # type: ignore[attr-defined]
    context = _context(tmp_path / "nobase", f"FROM {host}/does/not-exist:1\n", {})
    with pytest.raises(BuildFailed) as info:
        _build(docker_engine, context, "linux/amd64")
    assert f"Step 1/1 : FROM {host}/does/not-exist:1" in str(info.value)


def test_scan_finds_secrets_in_built_image(docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    context = _context(
        tmp_path / "ctx",
        "FROM scratch\nCOPY id_rsa /root/.ssh/id_rsa\nCOPY settings.py /app/settings.py\nCOPY app.env /app/.env\n",
        {
            "id_rsa": PEM_KEY,
            "settings.py": f"AWS_ACCESS_KEY_ID = '{AWS_KEY}'\n",
            "app.env": "DATABASE_PASSWORD=hunter2\nDEBUG=0\n",
        },
    )
    image_id, _ = _build(docker_engine, context, "linux/amd64", OCI_LABELS, pull=False)
    image = export_image(docker_engine, image_id, tmp_path / "export")
    findings = scan_image(image, list(REQUIRED_OCI_LABELS), 50 * 2**20)
    found = {(f.check, f.path): f.severity for f in findings}
    assert found == {
        ("secrets.private-key", "/root/.ssh/id_rsa"): "critical",
        ("secrets.aws-access-key", "/app/settings.py"): "high",
        ("secrets.dotenv", "/app/.env"): "high",
        ("user.root", ""): "medium",
    }
    assert len(severity_at_least(findings, "high")) == 3


def test_engine_unavailable(tmp_path: Path) -> None:
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/no-such.sock", version="1.41")
    context = _context(tmp_path / "ctx", "FROM scratch\n", {})
    with pytest.raises(EngineUnavailable) as info:
        build_platform_image(client, context, "Dockerfile", "linux/amd64", {}, lambda line: None)
    assert info.value.transient


def test_connect_engine(docker_host: str, tmp_path: Path) -> None:
    client = connect_engine(docker_host)
    try:
        assert client.ping()
    finally:
        client.close()
    with pytest.raises(EngineUnavailable, match="cannot reach the docker engine"):
        connect_engine(f"unix://{tmp_path}/no-such.sock")


def _files_in_image(client: docker.DockerClient, image_id: str, directory: Path) -> set[str]:
    names: set[str] = set()
    for layer in export_image(client, image_id, directory).layers:
        with tarfile.open(layer.path, "r:gz") as archive:
            names |= {member.name for member in archive.getmembers() if member.isfile()}
    return names


@pytest.mark.parametrize("dockerfile_path", ["Dockerfile", "../docker/Dockerfile"], ids=["in-context", "outside"])
def test_dockerignore_keeps_files_out_of_the_image(
    docker_engine: docker.DockerClient, tmp_path: Path, dockerfile_path: str
) -> None:
    """The SDK reads the context's .dockerignore itself (build(path=...)); with a Dockerfile outside the
    context it sends its own .dockerignore, which must still carry the context's rules."""
    # Given a context whose .dockerignore leaves out *.env and logs/, copied whole by the Dockerfile
    checkout = tmp_path / "source"
    dockerfile = "FROM scratch\nCOPY . /ctx/\n"
    _context(
        checkout / "app",
        dockerfile,
        {".dockerignore": "*.env\nlogs/\n", "keep.txt": "kept\n", "secrets.env": "TOKEN=x\n", "logs/debug.log": "x\n"},
    )
    (checkout / "docker").mkdir()
    (checkout / "docker" / "Dockerfile").write_text(dockerfile)
    context, dockerfile_file = build_paths(checkout, "app", dockerfile_path)

    # When it is built
    image_id = build_platform_image(
        docker_engine, context, str(dockerfile_file), "linux/amd64", {}, lambda line: None, pull=False, nocache=True
    )

    # Then the ignored files are not in the image, the others are
    files = _files_in_image(docker_engine, image_id, tmp_path / "export")
    assert "ctx/keep.txt" in files
    assert "ctx/secrets.env" not in files
    assert not any(name.startswith("ctx/logs") for name in files)
    assert not any(name.startswith("ctx/.dockerfile.") for name in files)
