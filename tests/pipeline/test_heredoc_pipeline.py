"""A Dockerfile with heredocs goes through the image pipeline: lowered, built on each platform, pushed.

The pushed layers prove it: the heredoc's files are exact (bytes and mode) on amd64 and arm64, the
RUN heredoc ran on its own platform, and nothing of the lowering (the generated files, the
``/dev/pipes`` mounts) is in any layer.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import httpx
import pytest

from releases.choices import ImageState
from releases.tasks import build_image
from tests.pipeline.test_image_pipeline import pipeline, queue_image, repository  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.services]

ENTRYPOINT = b'#!/bin/sh\nset -e\necho "starting $APP"\nexec "$@"\n'
HELLO = b'#!/bin/sh\necho "hello $1"\n'
DOCKERFILE = (
    "# syntax=docker/dockerfile:1\n"
    "FROM {base}\n"
    "RUN cat <<'EOF' > /docker-entrypoint.sh && chmod 755 /docker-entrypoint.sh\n"
    f"{ENTRYPOINT.decode()}EOF\n"
    "RUN <<EOF\nuname -m > /arch\nEOF\n"
    "COPY --chmod=755 <<'EOF' /usr/local/bin/hello\n"
    f"{HELLO.decode()}EOF\n"
    'ENTRYPOINT ["/docker-entrypoint.sh"]\n'
)


def _layer_files(settings, platform_digest: str) -> dict[str, tuple[bytes, int]]:
    host, _, _ = settings.REGISTRY_NAMESPACE.partition("/")
    base = f"http://{host}/v2/{repository(settings)}"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    files: dict[str, tuple[bytes, int]] = {}
    with httpx.Client(timeout=30) as client:
        manifest = json.loads(client.get(f"{base}/manifests/{platform_digest}", headers=accept).content)
        for layer in manifest["layers"]:
            blob = client.get(f"{base}/blobs/{layer['digest']}", follow_redirects=True).content
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
                for member in tar.getmembers():
                    data = b""
                    if member.isfile():
                        handle = tar.extractfile(member)
                        data = handle.read() if handle else b""
                    files[member.name] = (data, member.mode & 0o7777)
    return files


def test_heredoc_dockerfile_publishes_with_exact_files_on_each_platform(pipeline, settings):  # noqa: F811
    # Given a commit whose Dockerfile writes its entrypoint and a script with heredocs
    sha = pipeline.commit({"backend/Dockerfile": DOCKERFILE.format(base=pipeline.base_image)})
    image = queue_image(sha)

    # When the image pipeline runs
    state = build_image.apply(args=[image.pk]).get()
    image.refresh_from_db()

    # Then it is available, the build log says what was lowered, and each platform's layers hold
    # the heredocs' files exactly, written on that platform
    assert state == ImageState.AVAILABLE, image.failure_reason
    assert "Dockerfile:3: RUN <<EOF: the step's script" in image.build_log
    assert "Dockerfile:9: RUN <<EOF: the step's script" in image.build_log
    assert "Dockerfile:12: COPY <<EOF: the file is" in image.build_log
    machines = {"linux/amd64": b"x86_64\n", "linux/arm64": b"aarch64\n"}
    for platform, record in image.platform_digests.items():
        files = _layer_files(settings, record["digest"])
        assert files["docker-entrypoint.sh"] == (ENTRYPOINT, 0o755)
        assert files["usr/local/bin/hello"] == (HELLO, 0o755)
        assert files["arch"] == (machines[platform.removesuffix("/v8")], 0o644)
        assert not [name for name in files if "release-registry" in name or name.startswith("dev/pipes")]
