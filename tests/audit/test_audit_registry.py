"""audit_tags against a real docker-registry (and a breaking proxy in front of it), both engines."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from releases.audit import ExpectedTag, TagResult, TagStatus, audit_tags
from releases.oci import RegistryClient, build_manifest, sha256_digest
from releases.oci.manifest import Descriptor
from releases.oci.media_types import OCI_CONFIG, OCI_MANIFEST
from releases.sandbox.registry import RunningRegistry
from tests.audit.helpers import PLATFORMS, push_chart, push_image, put_index
from tests.fixtures.proxy import BreakingProxy
from tests.fixtures.token_auth import TokenServer

pytestmark = pytest.mark.services

ENGINES = ["fast", "httpx"]


def unique(name: str) -> str:
    return f"audit-{uuid.uuid4().hex[:8]}/{name}"


@pytest.fixture
def client(oci_registry: RunningRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(oci_registry.host, retries=1, backoff=0.01) as registry_client:
        yield registry_client


def image_tag(repository: str, tag: str, digest: str, key: str | None = None) -> ExpectedTag:
    return ExpectedTag(key or f"{repository}:{tag}", repository, tag, digest, "image", PLATFORMS)


def run(client: RegistryClient, expected: list[ExpectedTag], engine: str, **kwargs: object) -> dict[str, TagResult]:
    results = list(audit_tags(client, expected, engine=engine, **kwargs))  # type: ignore[arg-type]
    assert sorted(result.expected.key for result in results) == sorted(tag.key for tag in expected)
    return {result.expected.key: result for result in results}


@pytest.mark.parametrize("engine", ENGINES)
def test_all_ok(client: RegistryClient, engine: str) -> None:
    image = push_image(client, unique("app"), "1.0.0")
    repository = unique("chart")
    chart_digest = push_chart(client, repository, "1.0.0", "1.0.0")
    expected = [
        image_tag(image.repository, "1.0.0", image.digest),
        ExpectedTag("chart", repository, "1.0.0", chart_digest, "chart"),
    ]
    results = run(client, expected, engine)
    assert {key: result.status for key, result in results.items()} == dict.fromkeys(results, TagStatus.OK)
    assert results["chart"].actual_digest == chart_digest
    assert results["chart"].detail == "" and results["chart"].live_platforms is None


@pytest.mark.parametrize("engine", ENGINES)
def test_overwrite_drift_restore_delete(client: RegistryClient, engine: str) -> None:
    image = push_image(client, unique("app"), "2.0.0")
    expected = [image_tag(image.repository, "2.0.0", image.digest)]
    amd64, arm64 = image.entry("amd64"), image.entry("arm64")

    # Overwritten with other content that still serves both platforms: mismatch, both digests.
    other = put_index(client, image.repository, "2.0.0", [amd64, arm64], rebuilt="yes")
    (result,) = run(client, expected, engine).values()
    assert result.status == TagStatus.MISMATCH
    assert result.digest_changed
    assert result.actual_digest == other and result.expected.digest == image.digest
    assert other in result.detail and image.digest in result.detail
    assert result.live_platforms == PLATFORMS

    # Replaced by an index without arm64: platform drift (a mismatch too).
    amd64_only = put_index(client, image.repository, "2.0.0", [amd64])
    (result,) = run(client, expected, engine).values()
    assert result.status == TagStatus.PLATFORM_DRIFT
    assert result.digest_changed and result.actual_digest == amd64_only
    assert result.live_platforms == frozenset({"linux/amd64"})
    assert "missing: linux/arm64" in result.detail

    # Restored: ok again.
    assert put_index(client, image.repository, "2.0.0", [amd64, arm64]) == image.digest
    (result,) = run(client, expected, engine).values()
    assert result.status == TagStatus.OK and result.actual_digest == image.digest

    # Deleted (by digest, which removes its tags): missing.
    assert client.delete_manifest(image.repository, image.digest)
    (result,) = run(client, expected, engine).values()
    assert result.status == TagStatus.MISSING
    assert result.actual_digest is None
    assert "MANIFEST_UNKNOWN" in result.detail


@pytest.mark.parametrize("engine", ENGINES)
def test_single_platform_manifest_in_place_of_an_index_is_platform_drift(client: RegistryClient, engine: str) -> None:
    image = push_image(client, unique("app"), "3.0.0")
    amd64 = image.entry("amd64")
    body, media_type, _ = client.get_manifest(image.repository, amd64.digest)
    client.put_manifest(image.repository, "3.0.0", body, media_type)
    (result,) = run(client, [image_tag(image.repository, "3.0.0", image.digest)], engine).values()
    assert result.status == TagStatus.PLATFORM_DRIFT
    assert result.actual_digest == amd64.digest
    assert "single-platform manifest" in result.detail


@pytest.mark.parametrize("engine", ENGINES)
def test_chart_overwritten_is_a_mismatch_and_unknown_repository_is_missing(client: RegistryClient, engine: str) -> None:
    repository = unique("chart")
    original = push_chart(client, repository, "0.1.0", "0.1.0")
    replaced = push_chart(client, repository, "0.1.0", "0.1.0-rebuilt")
    expected = [
        ExpectedTag("chart", repository, "0.1.0", original, "chart"),
        ExpectedTag("gone", unique("never-pushed"), "1.0.0", original, "chart"),
    ]
    results = run(client, expected, engine)
    assert results["chart"].status == TagStatus.MISMATCH
    assert results["chart"].actual_digest == replaced
    assert results["chart"].live_platforms is None  # charts have no platforms: nothing fetched
    assert results["gone"].status == TagStatus.MISSING


@pytest.mark.parametrize("engine", ENGINES)
def test_failing_repositories_are_unreachable_never_missing(oci_registry: RunningRegistry, engine: str) -> None:
    with RegistryClient(oci_registry.host) as direct:
        healthy = push_image(direct, unique("healthy"), "1.0.0")
        drifted = push_image(direct, unique("drifted"), "1.0.0")
        put_index(direct, drifted.repository, "1.0.0", [drifted.entry("amd64")])
        flaky = push_image(direct, unique("flaky"), "1.0.0")
        dropped = push_image(direct, unique("dropped"), "1.0.0")
    absent = unique("absent")

    def rule(method: str, path: str, served: int) -> str:
        if path.startswith(f"/v2/{flaky.repository}/"):
            return "503"
        if path.startswith(f"/v2/{dropped.repository}/"):
            return "drop"
        return "forward"

    proxy = BreakingProxy(oci_registry.url, rule)
    expected = [
        image_tag(healthy.repository, "1.0.0", healthy.digest),
        image_tag(drifted.repository, "1.0.0", drifted.digest),
        image_tag(flaky.repository, "1.0.0", flaky.digest),
        image_tag(dropped.repository, "1.0.0", dropped.digest),
        image_tag(absent, "1.0.0", healthy.digest),
    ]
    try:
        with RegistryClient(proxy.host, retries=2, backoff=0.01) as client:
            results = run(client, expected, engine, concurrency=4)
    finally:
        proxy.close()
    statuses = {result.expected.repository: result.status for result in results.values()}
    assert statuses == {
        healthy.repository: TagStatus.OK,
        drifted.repository: TagStatus.PLATFORM_DRIFT,
        flaky.repository: TagStatus.UNREACHABLE,
        dropped.repository: TagStatus.UNREACHABLE,
        absent: TagStatus.MISSING,
    }
    flaky_result = next(r for r in results.values() if r.expected.repository == flaky.repository)
    assert "HTTP 503" in flaky_result.detail and "gave up after 3 attempts" in flaky_result.detail
    assert flaky_result.actual_digest is None
    flaky_heads = [r for r in proxy.requests if r[0] == "HEAD" and flaky.repository in r[1]]
    assert len(flaky_heads) == 3  # 1 + retries


@pytest.mark.parametrize("engine", ENGINES)
def test_a_registry_that_does_not_answer_in_time_is_unreachable(oci_registry: RunningRegistry, engine: str) -> None:
    with RegistryClient(oci_registry.host) as direct:
        quick = push_image(direct, unique("quick"), "1.0.0")
        slow = push_image(direct, unique("slow"), "1.0.0")
    proxy = BreakingProxy(oci_registry.url, lambda _m, path, _s: "slow" if slow.repository in path else "forward")
    expected = [image_tag(quick.repository, "1.0.0", quick.digest), image_tag(slow.repository, "1.0.0", slow.digest)]
    try:
        timeout = httpx.Timeout(0.3, connect=2.0)
        with RegistryClient(proxy.host, retries=1, backoff=0.01, timeout=timeout) as client:
            started = time.monotonic()
            results = run(client, expected, engine)
            elapsed = time.monotonic() - started
    finally:
        proxy.close()
    by_repository = {result.expected.repository: result for result in results.values()}
    assert by_repository[quick.repository].status == TagStatus.OK
    assert by_repository[slow.repository].status == TagStatus.UNREACHABLE
    assert "gave up after 2 attempts" in by_repository[slow.repository].detail
    assert elapsed < 1.9  # two attempts of ~0.3-0.4 s each, not the proxy's 2 s delay


def test_time_the_caller_spends_between_results_is_not_a_read_timeout(client: RegistryClient) -> None:
    image = push_image(client, unique("app"), "1.0.0")
    expected = [image_tag(image.repository, "1.0.0", image.digest, key=str(n)) for n in range(40)]
    with RegistryClient(client.host, retries=0, timeout=httpx.Timeout(0.2, connect=2.0)) as impatient:
        statuses = []
        for result in audit_tags(impatient, expected, concurrency=4):
            statuses.append(result.status)
            if len(statuses) % 10 == 1:
                time.sleep(0.5)  # e.g. a slow database write; the requests in flight wait meanwhile
    assert statuses == [TagStatus.OK] * 40


def test_inside_a_running_event_loop_the_audit_runs_its_loop_in_a_thread(client: RegistryClient) -> None:
    image = push_image(client, unique("app"), "1.0.0")
    expected = [image_tag(image.repository, "1.0.0", image.digest, key=str(n)) for n in range(50)]

    async def caller() -> list[TagResult]:
        return list(audit_tags(client, expected, concurrency=4))  # blocks this loop: fine for a test

    results = asyncio.run(caller())
    assert [result.status for result in results] == [TagStatus.OK] * 50


def test_dropped_keep_alive_connections_are_reopened_for_free(
    oci_registry: RunningRegistry, client: RegistryClient
) -> None:
    image = push_image(client, unique("app"), "1.0.0")
    # Every connection is closed (without "Connection: close") after its second answer.
    proxy = BreakingProxy(oci_registry.url, lambda _m, _p, served: "forward-then-drop" if served == 2 else "forward")
    expected = [image_tag(image.repository, "1.0.0", image.digest, key=str(n)) for n in range(60)]
    try:
        with RegistryClient(proxy.host, retries=0) as no_retries:
            results = run(no_retries, expected, "fast", concurrency=3)
    finally:
        proxy.close()
    assert {result.status for result in results.values()} == {TagStatus.OK}
    assert proxy.connections >= 60 // 2


@pytest.mark.parametrize("engine", ENGINES)
def test_generator_input_is_read_lazily_and_progress_reported(client: RegistryClient, engine: str) -> None:
    image = push_image(client, unique("app"), "1.0.0")
    advanced = 0
    concurrency = 4
    total = 500

    def expected() -> Iterator[ExpectedTag]:
        nonlocal advanced
        for n in range(total):
            advanced += 1
            yield image_tag(image.repository, "1.0.0", image.digest, key=str(n))

    progress: list[int] = []
    results = audit_tags(client, expected(), concurrency=concurrency, on_progress=progress.append, engine=engine)  # type: ignore[arg-type]
    assert advanced == 0  # nothing happens before iteration starts
    seen = 0
    for result in results:
        seen += 1
        assert result.status == TagStatus.OK
        # Never more than 2 * concurrency tags read ahead of the results consumed.
        assert advanced <= seen - 1 + 2 * concurrency
        if seen == 1:
            first_advanced = advanced
    assert seen == total and advanced == total
    assert first_advanced <= 2 * concurrency
    assert progress == list(range(100, total + 1, 100))


@pytest.mark.parametrize("engine", ENGINES)
def test_closing_early_stops_workers_and_input_errors_propagate(client: RegistryClient, engine: str) -> None:
    image = push_image(client, unique("app"), "1.0.0")
    advanced = 0

    def expected(fail_at: int | None = None) -> Iterator[ExpectedTag]:
        nonlocal advanced
        for n in range(10_000):
            if n == fail_at:
                raise LookupError("database went away")
            advanced += 1
            yield image_tag(image.repository, "1.0.0", image.digest, key=str(n))

    results = audit_tags(client, expected(), concurrency=4, engine=engine)  # type: ignore[arg-type]
    for n, _ in enumerate(results):
        if n == 5:
            break
    results.close()  # type: ignore[attr-defined]
    assert advanced <= 6 + 8
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name.startswith("tag-audit") for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("tag-audit-")]

    with pytest.raises(LookupError, match="database went away"):
        list(audit_tags(client, expected(fail_at=50), concurrency=4, engine=engine))  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ENGINES)
def test_token_auth_fetches_one_token_per_repository(
    token_registry: RunningRegistry, token_server: TokenServer, engine: str
) -> None:
    repositories = [unique(f"app{n}") for n in range(3)]
    digests: dict[str, str] = {}
    with RegistryClient(token_registry.host, username="alice", password="s3cret") as pusher:
        for repository in repositories:
            digests[repository] = push_image(pusher, repository, "1.0.0").digest
    expected = [
        image_tag(repository, "1.0.0", digests[repository], key=f"{repository}#{n}")
        for n in range(20)
        for repository in repositories
    ]
    token_server.requests.clear()
    with RegistryClient(token_registry.host, username="reader", password="r3ad") as reader:
        results = run(reader, expected, engine, concurrency=8)
    assert {result.status for result in results.values()} == {TagStatus.OK}
    for repository in repositories:
        fetched = [r for r in token_server.requests if r["scopes"] == [f"repository:{repository}:pull"]]
        assert len(fetched) == 1, (repository, len(fetched))

    with RegistryClient(token_registry.host, username="reader", password="wrong") as intruder:
        results = run(intruder, expected[:3], engine)
    assert {result.status for result in results.values()} == {TagStatus.ERROR}
    assert all("credentials were refused" in result.detail for result in results.values())


def test_auto_engine_with_a_custom_transport_goes_through_httpx(oci_registry: RunningRegistry) -> None:
    seen: list[str] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(f"{request.method} {request.url.path}")
            return super().handle_request(request)

    with RegistryClient(oci_registry.host) as direct:
        image = push_image(direct, unique("app"), "1.0.0")
    with RegistryClient(oci_registry.host, transport=Recording()) as client:
        with pytest.raises(ValueError, match="custom httpx transport"):
            audit_tags(client, [], engine="fast")
        (result,) = audit_tags(client, [image_tag(image.repository, "1.0.0", image.digest)])
    assert result.status == TagStatus.OK
    assert seen == [f"HEAD /v2/{image.repository}/manifests/1.0.0"]


def test_a_manifest_that_is_no_image_index_for_an_image_with_one_platform(client: RegistryClient) -> None:
    repository = unique("app")
    config = b'{"architecture":"amd64","os":"linux"}'
    config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
    client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
    manifest = build_manifest(config_descriptor, [])
    digest = client.put_manifest(repository, "1.0.0", manifest, OCI_MANIFEST)
    expected = ExpectedTag("k", repository, "1.0.0", "sha256:" + "1" * 64, "image", frozenset({"linux/amd64"}))
    (result,) = audit_tags(client, [expected])
    assert result.status == TagStatus.MISMATCH  # one platform expected, one served: unknown which
    assert result.actual_digest == digest
    assert "single-platform manifest" in result.detail
