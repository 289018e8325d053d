"""The image pipeline against a real dockerd and a real docker-registry: queued -> available with
one multi-arch index, or failed with a reason a person can act on; never overwriting a tag."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from releases.choices import ImageState
from releases.models import DockerImage, StateTransition
from releases.oci import RegistryClient, RegistryUnavailable
from releases.pipelines.images import push, run_image_pipeline
from releases.tasks import build_image
from tests.fixtures.factories import make_release
from tests.fixtures.services import require_binary

pytestmark = [pytest.mark.django_db, pytest.mark.services]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
PEM_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1Zb3\n-----END RSA PRIVATE KEY-----\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


class SourceRepo:
    """A real git repository with a backend/ image, committed as the tests need."""

    def __init__(self, root: Path, base_image: str) -> None:
        self.root = root
        self.base_image = base_image
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "ci@example.com")
        git(root, "config", "user.name", "CI")

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def commit(self, files: dict[str, str]) -> str:
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", "change")
        return git(self.root, "rev-parse", "HEAD")

    def backend(self, app_text: str = "hello from the backend\n", extra: str = "") -> str:
        dockerfile = (
            f"FROM {self.base_image}\nCOPY app.txt /app/app.txt\n{extra}"
            "LABEL org.example.component=backend\nUSER 1000\n"
        )
        return self.commit({"backend/Dockerfile": dockerfile, "backend/app.txt": app_text})


@pytest.fixture
def pipeline(settings, tmp_path, oci_registry, docker_host, multiarch_base_image):
    """Settings that point the pipeline at the real services, under a namespace of its own."""
    require_binary("git")
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/t{uuid.uuid4().hex[:10]}"
    settings.DOCKER_HOST = docker_host
    settings.BUILD_WORKDIR = tmp_path / "builds"
    settings.IMAGE_SIZE_BUDGET_BYTES = 50 * 1024 * 1024
    repo = SourceRepo(tmp_path / "source", multiarch_base_image.reference)
    settings.SOURCE_REPOSITORY_URL = repo.url
    return repo


def registry_client(settings) -> RegistryClient:
    return RegistryClient(settings.REGISTRY_NAMESPACE.split("/", 1)[0])


def repository(settings, name: str = "threek8s-backend") -> str:
    return f"{settings.REGISTRY_NAMESPACE.split('/', 1)[1]}/{name}"


def queue_image(commit_sha: str, version: str = "1.0.0") -> DockerImage:
    make_release(version, commit_sha=commit_sha)
    return DockerImage.objects.create(name="threek8s-backend", tag=version)


def test_two_platform_image_ends_available_with_one_index(pipeline, settings, multiarch_base_image):
    # Given a queued image whose release points at a real commit
    sha = pipeline.backend()
    image = queue_image(sha)

    # When the task runs
    state = build_image.apply(args=[image.pk]).get()
    image.refresh_from_db()
    assert state == ImageState.AVAILABLE, image.failure_reason

    # Then the version tag resolves to an OCI index of exactly amd64 and arm64, the recorded digest
    image.refresh_from_db()
    with registry_client(settings) as client:
        head = client.head_manifest(repository(settings), "1.0.0")
        body, media_type, digest = client.get_manifest(repository(settings), "1.0.0")
        index = json.loads(body)
        platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]}
        children = [client.head_manifest(repository(settings), m["digest"]) for m in index["manifests"]]
        latest = client.head_manifest(repository(settings), "latest")
    assert media_type == OCI_INDEX
    assert head.digest == digest == image.digest
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}
    assert all(child is not None for child in children)
    assert {m["digest"] for m in index["manifests"]} == {p["digest"] for p in image.platform_digests.values()}
    assert latest.digest == image.digest
    assert image.architecture == ["amd64", "arm64"]
    assert image.size > 0 and image.build_date is not None
    # the final stage's base pinned by the digest its registry gave, and recorded as the only stage
    base_digest = multiarch_base_image.index_digest
    assert image.base_image == f"{pipeline.base_image}@{base_digest}"
    assert image.stage_bases == [
        {"stage": "0", "base": pipeline.base_image, "digest": base_digest, "platform": None, "final": True}
    ]
    assert image.labels["org.opencontainers.image.revision"] == sha
    # every platform's steps, with their durations, in the record and in the log
    assert set(image.build_steps) == {"linux/amd64", "linux/arm64"}
    for record in image.build_steps.values():
        assert record["network"] == "none"  # the test engine has no bridge
        names = [step["step"] for step in record["steps"]]
        assert any("COPY app.txt /app/app.txt" in name for name in names)
        assert all(step["seconds"] is not None for step in record["steps"])
    assert "==> build network: none (the engine has no bridge network)" in image.build_log
    assert "[linux/arm64] step [2/2] COPY app.txt /app/app.txt" in image.build_log
    transitions = list(image.state_transitions.values_list("target", flat=True))
    assert transitions == ["building", "scanning", "pushing", "available"]


def test_same_task_delivered_twice_changes_nothing(pipeline, settings):
    image = queue_image(pipeline.backend())
    build_image.apply(args=[image.pk]).get()
    image.refresh_from_db()
    recorded = (image.digest, image.platform_digests, StateTransition.objects.count())

    assert build_image.apply(args=[image.pk]).get() == ImageState.AVAILABLE

    image.refresh_from_db()
    assert (image.digest, image.platform_digests, StateTransition.objects.count()) == recorded
    with registry_client(settings) as client:
        assert sorted(client.list_tags(repository(settings))) == ["1.0.0", "latest"]


def test_tag_holding_other_content_fails_and_registry_keeps_it(pipeline, settings, multiarch_base_image):
    # Given someone already pushed other content under the version tag
    skopeo = require_binary("skopeo")
    target = f"{settings.REGISTRY_NAMESPACE}/threek8s-backend:1.0.0"
    subprocess.run(
        [
            skopeo,
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{multiarch_base_image.reference}",
            f"docker://{target}",
        ],
        check=True,
        capture_output=True,
    )
    with registry_client(settings) as client:
        before = client.head_manifest(repository(settings), "1.0.0").digest
    image = queue_image(pipeline.backend())

    # When the pipeline runs
    assert build_image.apply(args=[image.pk]).get() == ImageState.FAILED

    # Then the image failed saying why, and the tag still holds the old digest
    image.refresh_from_db()
    assert f"tag 1.0.0 already points to {before}" in image.failure_reason
    assert "published versions are immutable" in image.failure_reason
    with registry_client(settings) as client:
        assert client.head_manifest(repository(settings), "1.0.0").digest == before
        assert client.head_manifest(repository(settings), "latest") is None


def test_push_interrupted_by_a_dying_registry_resumes_to_the_same_digests(
    pipeline, settings, registry_factory, tmp_path
):
    # Given a registry of its own that dies while the image is being pushed
    registry = registry_factory(name="dying-registry")
    settings.REGISTRY_NAMESPACE = f"{registry.host}/threek8s"
    image = queue_image(pipeline.backend())
    registry.stop()

    with pytest.raises(RegistryUnavailable):
        run_image_pipeline(image.pk, task="worker-1")
    image.refresh_from_db()
    assert image.state == ImageState.PUSHING
    planned = image.platform_digests

    # When it comes back and the task is delivered again
    restarted = subprocess.Popen(
        ["docker-registry", "serve", str(registry.workdir / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{registry.url}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert run_image_pipeline(image.pk, task="worker-2") == ImageState.AVAILABLE

        # Then it is available with the digests recorded before the push, built once
        image.refresh_from_db()
        assert image.platform_digests == planned
        assert image.build_log.count("==> building linux/amd64") == 1
        with registry_client(settings) as client:
            assert client.head_manifest(repository(settings), "1.0.0").digest == image.digest
    finally:
        restarted.terminate()
        restarted.wait(10)


def test_broken_dockerfile_fails_with_the_failing_step(pipeline):
    sha = pipeline.commit({"backend/Dockerfile": f"FROM {pipeline.base_image}\nCOPY missing.txt /app/\n"})
    image = queue_image(sha)

    assert build_image.apply(args=[image.pk]).get() == ImageState.FAILED

    image.refresh_from_db()
    assert "the linux/amd64 build failed at step [2/2] COPY missing.txt /app/" in image.failure_reason
    assert "missing.txt" in image.failure_reason
    assert "COPY missing.txt" in image.build_log


def test_failing_run_on_arm64_names_step_platform_and_output_and_pushes_nothing(pipeline, settings):
    # Given a Dockerfile whose RUN fails only on arm64, after printing something
    run = (
        'RUN echo "checking $(uname -m)" && '
        'if [ "$(uname -m)" = aarch64 ]; then echo "no arm64 here" >&2; exit 7; fi\n'
    )
    sha = pipeline.commit({"backend/Dockerfile": f"FROM {pipeline.base_image}\n{run}", "backend/app.txt": "x\n"})
    image = queue_image(sha)

    # When it is built
    assert build_image.apply(args=[image.pk]).get() == ImageState.FAILED

    # Then the image failed naming the step, the platform and the last lines of its output
    image.refresh_from_db()
    reason = image.failure_reason
    assert reason.startswith("the linux/arm64 build failed at step [2/2] RUN echo")
    assert "exit code: 7" in reason
    assert "checking aarch64" in reason and "no arm64 here" in reason
    # amd64 was built (its steps recorded), arm64's failure is recorded too
    assert image.build_steps["linux/amd64"]["steps"][-1]["seconds"] is not None
    assert "exit code: 7" in image.build_steps["linux/arm64"]["failed"]
    # and nothing of the image reached the registry: no tag, no manifest, no repository at all
    with registry_client(settings) as client:
        response = client._http.get(f"{client.base_url}/v2/_catalog")
    assert repository(settings) not in response.json()["repositories"]


def test_secret_in_a_layer_fails_the_scan_and_pushes_nothing(pipeline, settings):
    sha = pipeline.commit(
        {
            "backend/Dockerfile": f"FROM {pipeline.base_image}\nCOPY id_rsa /root/.ssh/id_rsa\nLABEL a=b\nUSER 1000\n",
            "backend/id_rsa": PEM_KEY,
        }
    )
    image = queue_image(sha)

    assert build_image.apply(args=[image.pk]).get() == ImageState.FAILED

    image.refresh_from_db()
    assert "secrets.private-key" in image.failure_reason
    assert "/root/.ssh/id_rsa" in image.failure_reason
    assert any(f["check"] == "secrets.private-key" for f in image.scan_findings)
    with registry_client(settings) as client:
        assert client.head_manifest(repository(settings), "1.0.0") is None


def test_unreachable_registry_fails_after_retries_with_what_to_check(pipeline, settings):
    settings.REGISTRY_NAMESPACE = "127.0.0.1:9/threek8s"  # nothing listens on the discard port
    image = queue_image(pipeline.backend())

    assert build_image.apply(args=[image.pk]).get() == ImageState.FAILED

    image.refresh_from_db()
    assert "127.0.0.1:9" in image.failure_reason
    assert "gave up after 3 retries" in image.failure_reason


def test_hotfix_of_an_older_line_never_moves_latest_back(pipeline, settings):
    # Given 1.1.0 is published and owns latest
    newer = queue_image(pipeline.backend("1.1.0\n"), version="1.1.0")
    build_image.apply(args=[newer.pk]).get()
    newer.refresh_from_db()

    # When a 1.0.9 hotfix is published afterwards
    hotfix = queue_image(pipeline.backend("1.0.9\n"), version="1.0.9")
    assert build_image.apply(args=[hotfix.pk]).get() == ImageState.AVAILABLE

    # Then latest still points at 1.1.0
    hotfix.refresh_from_db()
    with registry_client(settings) as client:
        assert client.head_manifest(repository(settings), "latest").digest == newer.digest
        assert client.head_manifest(repository(settings), "1.0.9").digest == hotfix.digest
    assert hotfix.digest != newer.digest


def test_republishing_a_published_version_uploads_nothing(pipeline, settings):
    image = queue_image(pipeline.backend())
    build_image.apply(args=[image.pk]).get()
    image.refresh_from_db()
    assert "bytes uploaded" in image.build_log

    again = push(image)

    assert again.bytes_uploaded == 0
    assert again.digest == image.digest


def test_token_auth_registry_accepts_the_push_with_scoped_tokens(pipeline, settings, token_registry, token_server):
    settings.REGISTRY_NAMESPACE = f"{token_registry.host}/threek8s"
    settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = "alice", "s3cret"
    image = queue_image(pipeline.backend())

    assert build_image.apply(args=[image.pk]).get() == ImageState.AVAILABLE

    scopes = {scope for request in token_server.requests for scope in request["scopes"]}
    assert "repository:threek8s/threek8s-backend:pull,push" in scopes


def test_wrong_registry_password_fails_with_a_clear_message(pipeline, settings, token_registry):
    settings.REGISTRY_NAMESPACE = f"{token_registry.host}/threek8s"
    settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = "alice", "wrong"
    image = queue_image(pipeline.backend())

    assert build_image.apply(args=[image.pk]).get() == ImageState.FAILED

    image.refresh_from_db()
    assert "REGISTRY_USERNAME" in image.failure_reason
    assert image.state_transitions.last().source == ImageState.PUSHING


def test_a_platform_the_engine_cannot_run_fails_before_building(pipeline, settings):
    settings.IMAGE_PLATFORMS = ["linux/amd64", "linux/mips64le"]
    image = queue_image(pipeline.backend())

    assert build_image.apply(args=[image.pk]).get() == ImageState.FAILED

    image.refresh_from_db()
    assert "the engine cannot run linux/mips64le" in image.failure_reason
    assert "install Debian's qemu-user-static" in image.failure_reason
    assert image.build_steps == {}  # nothing was built, not even amd64
    assert "==> building" not in image.build_log
