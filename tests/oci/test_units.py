"""Pure functions of releases.oci: no registry needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from releases.oci import (
    Descriptor,
    PlatformManifest,
    RegistryClient,
    RegistryUnavailable,
    TagConflict,
    Throttle,
    build_index,
    build_manifest,
    merge_scopes,
    parse_retry_after,
    parse_www_authenticate,
    sha256_digest,
)
from releases.oci.media_types import HELM_CHART_CONTENT, HELM_CONFIG, OCI_INDEX, OCI_MANIFEST
from releases.oci.names import is_loopback, validate_reference, validate_repository

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_parse_bearer_challenge_with_commas_in_scope() -> None:
    header = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/app:pull,push"'
    (challenge,) = parse_www_authenticate(header)
    assert challenge.is_bearer
    assert challenge.realm == "https://ghcr.io/token"
    assert challenge.service == "ghcr.io"
    assert challenge.scopes == ("repository:org/app:pull,push",)


def test_parse_error_and_basic_challenges() -> None:
    header = 'Bearer realm="http://a/t",error="insufficient_scope",scope="repository:x:push" , Basic realm=r'
    bearer, basic = parse_www_authenticate(header)
    assert bearer.error == "insufficient_scope"
    assert basic.is_basic and basic.realm == "r"  # unquoted value


def test_merge_scopes_unions_actions_per_repository() -> None:
    scopes = ["repository:a:push", "repository:b:pull", "repository:a:pull", "registry:catalog:*"]
    merged = merge_scopes(scopes)
    assert merged == ("registry:catalog:*", "repository:a:pull,push", "repository:b:pull")


def test_build_index_is_deterministic_and_sorted() -> None:
    arm = PlatformManifest(D2, 400, "linux", "arm64", "v8")
    amd = PlatformManifest(D1, 401, "linux", "amd64")
    one = build_index([arm, amd], annotations={"org.opencontainers.image.version": "1.0.0"})
    two = build_index([amd, arm], annotations={"org.opencontainers.image.version": "1.0.0"})
    assert one == two
    document = json.loads(one)
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == OCI_INDEX
    assert [m["platform"] for m in document["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    assert document["manifests"][0] == {
        "mediaType": OCI_MANIFEST,
        "digest": D1,
        "size": 401,
        "platform": {"architecture": "amd64", "os": "linux"},
    }


def test_build_index_refuses_empty_and_duplicate_platforms() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_index([])
    with pytest.raises(ValueError, match="appears twice"):
        build_index([PlatformManifest(D1, 1, "linux", "amd64"), PlatformManifest(D2, 1, "linux", "amd64")])
    with pytest.raises(ValueError, match="invalid digest"):
        PlatformManifest("sha256:nothex", 1, "linux", "amd64")


def test_build_manifest_for_helm_chart() -> None:
    config = Descriptor(HELM_CONFIG, D1, 10)
    body = build_manifest(config, [Descriptor(HELM_CHART_CONTENT, D2, 20)])
    document = json.loads(body)
    assert document["config"]["mediaType"] == HELM_CONFIG
    assert body == build_manifest(config, [Descriptor(HELM_CHART_CONTENT, D2, 20)])


@pytest.mark.parametrize(
    ("registry", "insecure", "expected"),
    [
        ("127.0.0.1:5000", (), "http://127.0.0.1:5000"),
        ("127.1.2.3:5000", (), "http://127.1.2.3:5000"),
        ("localhost:5000", (), "http://localhost:5000"),
        ("[::1]:5000", (), "http://[::1]:5000"),
        ("ghcr.io", (), "https://ghcr.io"),
        ("registry.internal:5000", ("registry.internal:5000",), "http://registry.internal:5000"),
        ("https://127.0.0.1:5443", (), "https://127.0.0.1:5443"),
    ],
)
def test_plain_http_only_for_loopback_or_insecure_hosts(
    registry: str, insecure: tuple[str, ...], expected: str
) -> None:
    with RegistryClient(registry, insecure_hosts=insecure) as client:
        assert client.base_url == expected


def test_refuses_explicit_plain_http_to_remote_host() -> None:
    with pytest.raises(ValueError, match="refusing plain HTTP"):
        RegistryClient("http://ghcr.io")


def test_refuses_half_credentials_and_bad_names() -> None:
    with pytest.raises(ValueError):
        RegistryClient("ghcr.io", username="u")
    for bad in ("UPPER/case", "a/../b", "a//b", "a?x", ""):
        with pytest.raises(ValueError):
            validate_repository(bad)
    with pytest.raises(ValueError):
        validate_reference("../x")
    assert not is_loopback("ghcr.io") and is_loopback("127.0.0.1")


def test_tag_conflict_message() -> None:
    error = TagConflict("team/app", "1.0.0", D1, D2)
    assert str(error) == f"tag 1.0.0 already points to {D1}; published versions are immutable"
    assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("Thu, 02 Jan 2025 03:04:35 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 02 Jan 2025 03:00:00 GMT", now=now) == 0.0  # already past
    for unreadable in (None, "", "-1", "soon", "nan"):
        assert parse_retry_after(unreadable, now=now) is None


def test_throttle_pauses_only_grow() -> None:
    now = [100.0]
    throttle = Throttle(clock=lambda: now[0])
    assert throttle.remaining() == 0.0
    throttle.hold(5)
    throttle.hold(1)  # a shorter pause asked meanwhile does not shorten the current one
    assert throttle.remaining() == 5.0
    now[0] = 104.0
    assert throttle.remaining() == 1.0
    now[0] = 106.0
    assert throttle.remaining() == 0.0


def test_which_answers_count_as_rate_limiting() -> None:
    with RegistryClient("127.0.0.1:1", backoff=0.5, max_retry_after=60, rate_limit_retries=2) as client:
        assert not client.honour_rate_limit(503, None, 1, "x")  # plain 503: ordinary 5xx retry
        assert not client.honour_rate_limit(404, "5", 1, "x")
        assert client.honour_rate_limit(503, "2", 1, "x")
        assert 1.9 < client.throttle.remaining() <= 2.0
        assert client.honour_rate_limit(429, None, 2, "x")  # no Retry-After: the backoff (1 s)
        assert client.honour_rate_limit(429, "60", 1, "x")  # the ceiling itself is still waited
        with pytest.raises(RegistryUnavailable, match="asks to wait 61 s") as excinfo:
            client.honour_rate_limit(429, "61", 1, "push blob sha256:ab to team/app")
        assert "push blob sha256:ab to team/app" in str(excinfo.value)
        assert excinfo.value.retry_after == 61
        with pytest.raises(RegistryUnavailable, match="still rate limiting"):
            client.honour_rate_limit(429, "1", 3, "x")


def test_refuses_nonsense_upload_and_rate_limit_settings() -> None:
    for bad in ({"upload_chunk_size": 0}, {"max_retry_after": -1}, {"rate_limit_retries": -1}):
        with pytest.raises(ValueError):
            RegistryClient("127.0.0.1:1", **bad)  # type: ignore[arg-type]
