"""The threek8s-shaped sample (examples/) published through BuildKit with a real worker, dockerd with
qemu emulation, docker-registry and helm; then read back from the registry, layer by layer.

What the pushed layers must prove: each platform's RUN steps ran on that platform (``uname -m``,
``$TARGETARCH``), the cross stage ran on the build platform, ``COPY --chmod`` and ``.dockerignore``
held, and nothing of a cache mount or a build secret is in any blob, log, record or page.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from releases.choices import ReleaseState
from releases.imagebuild.emulation import engine_platforms
from releases.models import ApiToken, DockerImage, ReleaseVersion
from releases.oci import RegistryClient
from tests.fixtures.celery_worker import stop_worker
from tests.fixtures.services import service_missing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ARCH = {"linux/amd64": ("x86_64", "amd64"), "linux/arm64": ("aarch64", "arm64")}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=CI", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def sample_repo(tmp_path) -> Path:
    repo = tmp_path / "threek8s"
    shutil.copytree(EXAMPLES, repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "chore: release 1.0.0")
    return repo


@pytest.fixture
def npm_token(tmp_path) -> str:
    value = f"npm_{uuid.uuid4().hex}"
    (tmp_path / "npm_token").write_text(value)
    return value


@pytest.fixture
def emulation(running_dockerd):
    """The engine must run arm64 (natively or through qemu); with CI=true its absence fails."""
    info = running_dockerd.client().info()
    runnable = engine_platforms(running_dockerd.base_url, info["Architecture"])
    if runnable.missing(["linux/arm64"]):
        service_missing("the engine cannot run linux/arm64: install qemu-user-static and binfmt-support (bin/setup)")
    return runnable


@pytest.fixture
def service(
    tmp_path,
    oci_registry,
    running_dockerd,
    emulation,
    multiarch_base_image,
    helm_bin,
    celery_worker_factory,
    settings,
    sample_repo,
    npm_token,
):
    overrides = {
        "REGISTRY_NAMESPACE": f"{oci_registry.host}/real{uuid.uuid4().hex[:8]}",
        "SOURCE_REPOSITORY_URL": f"file://{sample_repo}",
        "DOCKER_HOST": running_dockerd.base_url,
        "BUILD_WORKDIR": str(tmp_path / "builds"),
        "HELM_BIN": str(helm_bin),
        "IMAGE_BUILD_ARGS": f"BASE_IMAGE={multiarch_base_image.reference}",
        "IMAGE_SIZE_BUDGET_BYTES": str(50 * 1024 * 1024),
        "BUILD_SECRETS": f"npm_token={tmp_path / 'npm_token'}",
    }
    settings.REGISTRY_NAMESPACE = overrides["REGISTRY_NAMESPACE"]
    worker = celery_worker_factory(overrides)
    token = ApiToken(name="ci", scope=ApiToken.Scope.WRITE)
    key = token.issue()
    token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.worker_overrides, client.worker = overrides, worker  # type: ignore[attr-defined]
    return client


def publish(client: APIClient, version: str, commit_sha: str, timeout: float = 900) -> ReleaseVersion:
    response = client.post(
        "/api/v1/releases/", {"version": version, "commit_sha": commit_sha, "pr_number": 1}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert client.post(f"/api/v1/releases/{version}/publish/").status_code == 202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        release = ReleaseVersion.objects.get(version=version)
        if release.state in (ReleaseState.PUBLISHED, ReleaseState.FAILED):
            return release
        time.sleep(1)
    raise AssertionError(f"release {version} is still {release.state} after {timeout}s")


class PushedImage:
    """Every blob of an image's version tag as the registry serves it, and its files per platform."""

    def __init__(self, registry: RegistryClient, repository: str, tag: str) -> None:
        self.registry = registry
        self.repository = repository
        self.blobs: dict[str, bytes] = {}
        body, _, _ = registry.get_manifest(repository, tag)
        self.index = json.loads(body)
        self.blobs[f"index {tag}"] = body
        self.configs: dict[str, dict] = {}
        self.files: dict[str, dict[str, tuple[tarfile.TarInfo, bytes]]] = {}
        self.layer_paths: dict[str, list[str]] = {}
        for entry in self.index["manifests"]:
            platform = f"{entry['platform']['os']}/{entry['platform']['architecture']}"
            manifest_body, _, _ = registry.get_manifest(repository, entry["digest"])
            self.blobs[f"manifest {platform}"] = manifest_body
            manifest = json.loads(manifest_body)
            config = self.blob(manifest["config"]["digest"])
            self.configs[platform] = json.loads(config)
            files: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
            paths: list[str] = []
            for layer in manifest["layers"]:
                data = gzip.decompress(self.blob(layer["digest"]))
                self.blobs[f"layer {layer['digest']} (uncompressed)"] = data
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    for member in tar.getmembers():
                        name = member.name.lstrip("./")
                        paths.append(name)
                        content = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                        files[name] = (member, content)
            self.files[platform] = files
            self.layer_paths[platform] = paths

    def blob(self, digest: str) -> bytes:
        response = self.registry._http.get(f"{self.registry.base_url}/v2/{self.repository}/blobs/{digest}")
        response.raise_for_status()
        self.blobs[digest] = response.content
        return response.content

    def text(self, platform: str, path: str) -> str:
        return self.files[platform][path][1].decode()


def every_blob_of(registry: RegistryClient, repository: str) -> dict[str, bytes]:
    """Every manifest and blob reachable from every tag of ``repository`` (.sig/.att included)."""
    seen: dict[str, bytes] = {}
    pending = [(repository, tag) for tag in registry.list_tags(repository)]
    while pending:
        repo, reference = pending.pop()
        body, _, digest = registry.get_manifest(repo, reference)
        if digest in seen:
            continue
        seen[digest] = body
        document = json.loads(body)
        pending += [(repo, entry["digest"]) for entry in document.get("manifests", [])]
        for descriptor in [document.get("config"), *document.get("layers", [])]:
            if descriptor and descriptor["digest"] not in seen:
                response = registry._http.get(f"{registry.base_url}/v2/{repo}/blobs/{descriptor['digest']}")
                response.raise_for_status()
                seen[descriptor["digest"]] = response.content
                if response.content[:2] == b"\x1f\x8b":
                    seen[descriptor["digest"] + " (uncompressed)"] = gzip.decompress(response.content)
    return seen


def test_the_sample_publishes_and_each_platform_layer_proves_where_it_ran(service, sample_repo, npm_token, settings):
    # Given the threek8s-shaped sample committed as 1.0.0, and an npm token as a build secret
    commit_sha = git(sample_repo, "rev-parse", "HEAD")

    # When release 1.0.0 is published
    release = publish(service, "1.0.0", commit_sha)

    # Then it is published, and the pushed layers of each platform say where each RUN ran
    assert release.state == ReleaseState.PUBLISHED, release.failure_reason
    host, _, namespace = settings.REGISTRY_NAMESPACE.partition("/")
    # the heredoc's body, byte for byte (the Dockerfile writes it with RUN cat <<'EOF' > ...)
    entrypoint = (
        b"#!/bin/sh\n"
        b"# Writes the runtime configuration the frontend reads, then runs the command.\n"
        b"set -e\n"
        b'echo "{\\"port\\": ${THREEK8S_PORT:-8080}}" > /tmp/runtime-config.json\n'
        b'exec "$@"\n'
    )
    healthcheck = (EXAMPLES / "frontend" / "healthcheck.sh").read_bytes()
    with RegistryClient(host) as registry:
        frontend = PushedImage(registry, f"{namespace}/threek8s-frontend", "1.0.0")
        backend = PushedImage(registry, f"{namespace}/threek8s-backend", "1.0.0")
        for platform, (machine, arch) in ARCH.items():
            assert frontend.text(platform, "usr/share/threek8s/arch.txt") == f"{machine}\n"
            assert frontend.text(platform, "usr/share/threek8s/targetarch.txt") == f"{arch}\n"
            # the cross stage (FROM --platform=$BUILDPLATFORM) ran on the build platform, for the target
            built_on = frontend.text(platform, "usr/share/threek8s/build-info.txt")
            assert built_on == f"assets built on {os.uname().machine} for {arch}\n"
            member, content = frontend.files[platform]["docker-entrypoint.sh"]
            assert content == entrypoint and member.mode & 0o777 == 0o755  # the heredoc, exact
            member, content = frontend.files[platform]["usr/local/bin/healthcheck"]
            assert content == healthcheck and member.mode & 0o777 == 0o755  # COPY --chmod
            assert not any(path.endswith("NOTES.md") for path in frontend.layer_paths[platform])  # .dockerignore
            # nothing of the lowering is in a layer
            assert not any(".release-registry-lowered" in path for path in frontend.layer_paths[platform])
            assert backend.text(platform, "app/arch.txt") == f"{machine}\n"
            assert backend.text(platform, "app/targetarch.txt") == f"{arch}\n"
            assert backend.text(platform, "app/token-status") == "registry token: present\n"
            for image in (frontend, backend):
                # nothing of a cache mount or the secret's mount is in any layer (BuildKit leaves the
                # empty mount point directories, nothing in them)
                mounted = [
                    path
                    for path, (member, _) in image.files[platform].items()
                    if path.startswith(("root/.cache", "run/secrets")) and not member.isdir()
                ]
                assert mounted == [], mounted
            config = frontend.configs[platform]["config"]
            assert frontend.configs[platform]["architecture"] == arch
            assert config["User"] == "1000"
            assert config["Entrypoint"] == ["/docker-entrypoint.sh"]
            assert config["Cmd"] == ["cat", "/usr/share/threek8s/index.html"]
            assert "8080/tcp" in config["ExposedPorts"]
            assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/healthcheck"]
            assert "THREEK8S_PORT=8080" in config["Env"]
            assert config["Labels"]["org.opencontainers.image.title"] == "threek8s-frontend"
        # the secret is in no blob of either repository: layers, configs, manifests, signatures
        blobs = {**every_blob_of(registry, f"{namespace}/threek8s-frontend")}
        blobs.update(every_blob_of(registry, f"{namespace}/threek8s-backend"))
    assert blobs and not [name for name, data in blobs.items() if npm_token.encode() in data]

    # and the record: every stage's base pinned, each platform's steps with durations
    image = DockerImage.objects.get(name="threek8s-frontend", tag="1.0.0")
    assert [(s["stage"], s["platform"], s["final"]) for s in image.stage_bases] == [
        ("assets", "$BUILDPLATFORM", False),
        ("1", None, True),
    ]
    assert all(s["digest"].startswith("sha256:") for s in image.stage_bases)
    assert image.base_image.endswith("@" + image.stage_bases[-1]["digest"])
    for platform in ARCH:
        steps = image.build_steps[platform]["steps"]
        assert any("RUN --mount=type=cache" in step["step"] for step in steps)
        assert all(isinstance(step["seconds"], float) for step in steps)

    # and the secret is in no log, record, API answer or admin page
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    browser = APIClient()
    browser.force_login(admin)
    responses = [
        service.get("/api/v1/releases/1.0.0/"),
        service.get("/api/v1/releases/1.0.0/artifacts/"),
        *(service.get(f"/api/v1/images/{row.pk}/") for row in DockerImage.objects.all()),
        *(browser.get(f"/admin/releases/dockerimage/{row.pk}/change/") for row in DockerImage.objects.all()),
    ]
    assert [response.status_code for response in responses] == [200] * len(responses)
    pages = [response.content for response in responses]
    records = [
        json.dumps([row.build_log, row.build_steps, row.provenance, row.stage_bases, row.labels, row.failure_reason])
        for row in DockerImage.objects.all()
    ]
    assert not [page for page in pages if npm_token.encode() in page]
    assert not [record for record in records if npm_token in record]


def test_a_second_release_changing_only_application_files_reuses_the_cache(service, sample_repo):
    # Given 1.0.0 published from the sample
    first = publish(service, "1.0.0", git(sample_repo, "rev-parse", "HEAD"))
    assert first.state == ReleaseState.PUBLISHED, first.failure_reason

    # When only the frontend's page changes and 1.0.1 is published on the same engine
    page = sample_repo / "frontend" / "index.html"
    page.write_text(page.read_text().replace("Cluster overview.", "Cluster overview, now faster."))
    chart = sample_repo / "chart" / "Chart.yaml"
    chart.write_text(chart.read_text().replace("1.0.0", "1.0.1"))
    git(sample_repo, "commit", "-q", "-am", "feat: faster overview")
    second = publish(service, "1.0.1", git(sample_repo, "rev-parse", "HEAD"))

    # Then the backend came wholly from the cache, and the frontend rebuilt only what the page feeds
    assert second.state == ReleaseState.PUBLISHED, second.failure_reason
    backend = DockerImage.objects.get(name="threek8s-backend", tag="1.0.1")
    frontend = DockerImage.objects.get(name="threek8s-frontend", tag="1.0.1")
    for platform in ARCH:
        built = [step for step in backend.build_steps[platform]["steps"] if "] FROM " not in step["step"]]
        assert built and all(step["cached"] for step in built), backend.build_steps
        steps = {step["step"]: step["cached"] for step in frontend.build_steps[platform]["steps"]}
        assert [cached for name, cached in steps.items() if "uname -m > /usr/share" in name] == [True]
        # the page's stage runs again for each target; the final stage's RUN before the COPY does not
        assert [cached for name, cached in steps.items() if name.startswith("[assets 4/4] RUN")] == [False]
        assert [cached for name, cached in steps.items() if "COPY --from=assets" in name] == [False]
    # the cross stage copied the page once, on the build platform: the second target reused it
    copies = [
        step["cached"]
        for platform in ("linux/amd64", "linux/arm64")
        for step in frontend.build_steps[platform]["steps"]
        if "COPY index.html" in step["step"]
    ]
    assert copies == [False, True]
    assert "steps from the cache" in frontend.build_log


def test_on_another_engine_the_previous_release_serves_as_cache(
    service, sample_repo, second_dockerd, celery_worker_factory
):
    # Given 1.0.0 published on the first engine (its images carry inline cache metadata)
    first = publish(service, "1.0.0", git(sample_repo, "rev-parse", "HEAD"))
    assert first.state == ReleaseState.PUBLISHED, first.failure_reason

    # When the worker moves to a cold engine and 1.0.1, changing only the chart, is published
    stop_worker(service.worker)
    celery_worker_factory({**service.worker_overrides, "DOCKER_HOST": second_dockerd.base_url})
    chart = sample_repo / "chart" / "Chart.yaml"
    chart.write_text(chart.read_text().replace("1.0.0", "1.0.1"))
    git(sample_repo, "commit", "-q", "-am", "chore: release 1.0.1")
    second = publish(service, "1.0.1", git(sample_repo, "rev-parse", "HEAD"))

    # Then the backend's steps came from the cache of the pushed 1.0.0, and its log says so
    assert second.state == ReleaseState.PUBLISHED, second.failure_reason
    backend = DockerImage.objects.get(name="threek8s-backend", tag="1.0.1")
    assert "threek8s-backend:1.0.0 (inline cache of the previous release)" in backend.build_log
    for platform in ARCH:
        built = [step for step in backend.build_steps[platform]["steps"] if "] FROM " not in step["step"]]
        assert built and all(step["cached"] for step in built), backend.build_steps
