"""Pure parts of releases.audit: validation, platform parsing, latest_behind, HTTP head parsing."""

from __future__ import annotations

import pytest

from releases.audit import (
    ExpectedTag,
    LatestStatus,
    TagResult,
    TagStatus,
    audit_tags,
    index_platforms,
    latest_behind,
    normalize_platform,
)
from releases.audit.probe import _parse_head, _Transient, proxied_by_environment
from releases.oci import RegistryClient
from releases.oci.client import ConnectionSettings
from releases.oci.media_types import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
OLDER = "sha256:" + "c" * 64


def test_expected_tag_normalises_platforms() -> None:
    tag = ExpectedTag("1", "team/app", "1.2.3", DIGEST, "image", frozenset({"linux/amd64", "Linux/ARM64/v8"}))
    assert tag.platforms == frozenset({"linux/amd64", "linux/arm64"})
    assert tag.reference == "team/app:1.2.3"
    assert ExpectedTag("2", "team/chart", "0.1.0", DIGEST, "chart").platforms is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"repository": "Team/App"}, "invalid repository"),
        ({"tag": "-bad"}, "invalid tag"),
        ({"digest": "sha256:abc"}, "invalid digest"),
        ({"kind": "helm"}, "kind must be"),
        ({"kind": "chart", "platforms": frozenset({"linux/amd64"})}, "only be given for images"),
        ({"platforms": frozenset()}, "must not be empty"),
        ({"platforms": frozenset({"amd64"})}, "os/arch"),
    ],
)
def test_expected_tag_refuses(kwargs: dict[str, object], error: str) -> None:
    values: dict[str, object] = {"key": "k", "repository": "team/app", "tag": "1.0.0", "digest": DIGEST}
    values.update(kwargs)
    with pytest.raises(ValueError, match=error):
        ExpectedTag(**values)  # type: ignore[arg-type]


def test_expected_tag_refuses_a_bare_string_as_platforms() -> None:
    with pytest.raises(TypeError):
        ExpectedTag("k", "team/app", "1.0.0", DIGEST, "image", "linux/amd64")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("platform", "normalised"),
    [
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        (" LINUX/AMD64 ", "linux/amd64"),
    ],
)
def test_normalize_platform(platform: str, normalised: str) -> None:
    assert normalize_platform(platform) == normalised


def test_index_platforms_skips_attestations_and_reads_docker_lists() -> None:
    def entry(os_name: str, arch: str, variant: str | None = None, **extra: object) -> dict[str, object]:
        platform = {"os": os_name, "architecture": arch} | ({"variant": variant} if variant else {})
        return {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 1, "platform": platform, **extra}

    buildx = {
        "mediaType": OCI_INDEX,
        "manifests": [
            entry("linux", "amd64"),
            entry("linux", "arm64", "v8"),
            entry("unknown", "unknown", annotations={"vnd.docker.reference.type": "attestation-manifest"}),
            {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 1},  # no platform: skipped
        ],
    }
    assert index_platforms(buildx) == frozenset({"linux/amd64", "linux/arm64"})
    docker_list = {"mediaType": DOCKER_MANIFEST_LIST, "manifests": [entry("linux", "arm", "v7")]}
    assert index_platforms(docker_list) == frozenset({"linux/arm/v7"})
    assert index_platforms({"mediaType": OCI_MANIFEST, "config": {}, "layers": []}) is None
    assert index_platforms({"mediaType": DOCKER_MANIFEST, "manifests": []}) is None
    assert index_platforms([]) is None


def test_latest_behind() -> None:
    current = latest_behind(DIGEST, DIGEST)
    assert current.status == LatestStatus.CURRENT and not current.behind
    behind = latest_behind(DIGEST, OLDER, {OLDER: "1.1.0"})
    assert behind.status == LatestStatus.BEHIND and behind.behind and behind.version == "1.1.0"
    assert "1.1.0" in behind.detail
    unknown = latest_behind(DIGEST, OTHER, {OLDER: "1.1.0"})
    assert unknown.status == LatestStatus.UNKNOWN and unknown.behind and unknown.version is None
    missing = latest_behind(DIGEST, None)
    assert missing.status == LatestStatus.MISSING and missing.behind
    with pytest.raises(ValueError):
        latest_behind("sha256:nope", DIGEST)


def test_tag_result_flags() -> None:
    expected = ExpectedTag("k", "team/app", "1.0.0", DIGEST)
    assert TagResult(expected, TagStatus.OK, DIGEST).ok
    assert TagResult(expected, TagStatus.PLATFORM_DRIFT, OTHER).digest_changed
    assert not TagResult(expected, TagStatus.UNREACHABLE).digest_changed
    assert TagStatus.MISSING == "missing"


def test_audit_tags_refuses_bad_arguments_at_call_time() -> None:
    with RegistryClient("127.0.0.1:9") as client:
        for kwargs in ({"concurrency": 0}, {"concurrency": 257}, {"progress_every": 0}, {"engine": "curl"}):
            with pytest.raises(ValueError):
                audit_tags(client, [], **kwargs)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expects ExpectedTag"):
            list(audit_tags(client, ["team/app:1.0.0"]))  # type: ignore[list-item]
        assert list(audit_tags(client, [])) == []


def test_parse_head() -> None:
    status, headers, keep_alive = _parse_head(
        b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: " + DIGEST.encode() + b"\r\nContent-Length: 12"
    )
    assert (status, headers["docker-content-digest"], headers["content-length"]) == (200, DIGEST, "12")
    assert keep_alive
    assert _parse_head(b"HTTP/1.1 404 Not Found\r\nConnection: close")[2] is False
    assert _parse_head(b"HTTP/1.0 200 OK")[2] is False
    assert _parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive")[2] is True
    for garbage in (b"SSH-2.0-OpenSSH", b"HTTP/1.1 2x0 OK", b"HTTP/1.1 200 OK\r\nno colon here"):
        with pytest.raises(_Transient):
            _parse_head(garbage)


def test_proxy_from_environment_disables_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ConnectionSettings("https", "ghcr.io", True, 5.0, 60.0, "ua", False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert not proxied_by_environment(settings)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert proxied_by_environment(settings)
    monkeypatch.setenv("NO_PROXY", "ghcr.io")
    assert not proxied_by_environment(settings)
