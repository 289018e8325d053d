"""Benchmark of signing: the audit with signature checks against the plain audit, and the cost of
signing on publishing. Ratios measured in one run against a real docker-registry.

Run: ``.venv/bin/python -m bench.signing [--quick]`` (about 4 minutes, 3 of them pushing and signing). It
starts its own registry (storage on /dev/shm when there is room) and measures:

(a) audit tags/second over 1,000 signed tags (each a distinct manifest with its cosign ``.sig``,
    like a chart version), plain (the version tags) vs with signature checks (what
    ``releases.pipelines.audit.check_signatures`` asks besides: one tag listing per repository, and
    a HEAD of each ``.sig`` whose turn it is, one run in 4, compared with the recorded digest),
    median of 8 consecutive runs; goal: >= 0.5x;
(b) the same over 200 image versions shaped like ours (an index of 2 platforms: 3 ``.sig`` and 2
    ``.att`` per version tag), for the record: the audit then asks 6 manifests per version tag;
(c) publishing a sample-sized release (2 images x 2 platforms of 8 MiB each, and a
    chart) into fresh repositories: push alone vs push + signing (every platform manifest, index
    and chart manifest signed, each platform's SLSA provenance attested),
    median of 8, for the record: what the signing requests cost against bare pushes. The issue's goal (signing
    adds <= 15% to the publish) is measured end to end, builds and SBOMs included, by
    ``bench/publish_signing.py``.
Quick mode: 20 signed tags, 3 image versions, 1 MiB layers, one round.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._tools import require, scratch_directory  # noqa: E402
from bench.figures import Figure, Goal, main, ratio_figure  # noqa: E402
from releases.audit import ExpectedTag, TagListing, audit_tags, content_due  # noqa: E402
from releases.oci import (  # noqa: E402
    Descriptor,
    ManifestRef,
    PlatformManifest,
    RegistryClient,
    build_index,
    build_manifest,
    canonical_json,
    sha256_digest,
)
from releases.oci.media_types import (  # noqa: E402
    HELM_CHART_CONTENT,
    HELM_CONFIG,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST,
)
from releases.sandbox.registry import start_registry  # noqa: E402
from releases.signing import (  # noqa: E402
    SLSA_PROVENANCE_V1,
    attest_image,
    attestation_tag,
    generate_key_pair,
    load_private_key,
    sign_image,
    signature_tag,
    slsa_provenance,
)

CONCURRENCY = 16
Expected = tuple[str, str, str, str]  # (key, repository, tag, digest)


def push_manifest(client: RegistryClient, repository: str, label: str, config_blob: Descriptor, layer: Descriptor):
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {"Labels": {"v": label}}})
    client.push_blob(repository, sha256_digest(config), len(config), config)
    body = build_manifest(Descriptor(OCI_CONFIG, sha256_digest(config), len(config)), [layer])
    digest = client.put_manifest(repository, sha256_digest(body), body, OCI_MANIFEST)
    return ManifestRef(digest, OCI_MANIFEST, len(body))


def populate_single(client: RegistryClient, host: str, key, count: int) -> tuple[list[Expected], list[Expected]]:
    """``count`` distinct signed manifests under version tags; (version tags, .sig tags)."""
    repository = "bench/charts"
    layer_bytes = b"chart archive" * 100
    layer = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(layer_bytes), len(layer_bytes))
    client.push_blob(repository, layer.digest, layer.size, layer_bytes)
    tags, signatures = [], []
    for number in range(count):
        ref = push_manifest(client, repository, str(number), layer, layer)
        version = f"1.{number}.0"
        client.put_manifest(repository, version, *client.get_manifest(repository, ref.digest)[:2])
        signed = sign_image(client, repository, ref, key, f"{host}/{repository}")
        tags.append((f"chart:{number}", repository, version, ref.digest))
        signatures.append(
            (f"sig:chart:{number}:{version}:chart", repository, signature_tag(ref.digest), signed.manifest_digest)
        )
    return tags, signatures


def provenance(version: str, platform: str) -> dict:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    return slsa_provenance(
        builder_id="https://example.com/release-registry",
        build_type="https://example.com/release-registry/build-types/docker-platform-image/v1",
        source_repository="https://github.com/stianfro/threek8s",
        commit_sha="a" * 40,
        version=version,
        started_on=now,
        finished_on=now + timedelta(seconds=9),
        build_args={"BASE_IMAGE": "base/tiny:1"},
        base_image="base/tiny:1",
        base_image_digest="sha256:" + "b" * 64,
        invocation_id=f"{version}/{platform}",
    )


def sign_image_version(client, host, repository, key, index: ManifestRef, platforms: dict[str, ManifestRef], version):
    """What ``sign_pushed_image`` does, SBOM aside: per platform a signature and the provenance, then the index."""
    recorded = {}
    for platform, ref in platforms.items():
        signed = sign_image(client, repository, ref, key, f"{host}/{repository}")
        attested = attest_image(
            client,
            repository,
            ref,
            key,
            subject_name=f"{host}/{repository}",
            predicate_type=SLSA_PROVENANCE_V1,
            predicate=provenance(version, platform),
        )
        recorded[ref.digest] = (platform, signed.manifest_digest, attested.manifest_digest)
    recorded[index.digest] = (
        "index",
        sign_image(client, repository, index, key, f"{host}/{repository}").manifest_digest,
        "",
    )
    return recorded


def push_image_version(client, repository, version, layer_bytes: dict[str, bytes]):
    platforms = {}
    for platform, data in layer_bytes.items():
        layer = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(data), len(data))
        client.push_blob(repository, layer.digest, layer.size, data)
        platforms[platform] = push_manifest(client, repository, f"{version} {platform}", layer, layer)
    index = build_index(
        [PlatformManifest(ref.digest, ref.size, "linux", platform.split("/")[1]) for platform, ref in platforms.items()]
    )
    index_ref = ManifestRef(
        client.put_manifest(repository, sha256_digest(index), index, OCI_INDEX), OCI_INDEX, len(index)
    )
    return index, index_ref, platforms


def populate_images(client, host, key, versions: int) -> tuple[list[Expected], list[Expected]]:
    repository = "bench/images"
    layers = {p: f"layer of {p}".encode() * 50 for p in ("linux/amd64", "linux/arm64")}
    tags, signatures = [], []
    for number in range(versions):
        version = f"2.{number}.0"
        index, index_ref, platforms = push_image_version(client, repository, version, layers)
        client.put_manifest(repository, version, index, OCI_INDEX)
        tags.append((f"image:{number}", repository, version, index_ref.digest))
        for digest, (of, sig, att) in sign_image_version(
            client, host, repository, key, index_ref, platforms, version
        ).items():
            signatures.append((f"sig:image:{number}:{version}:{of}", repository, signature_tag(digest), sig))
            if att:
                signatures.append((f"att:image:{number}:{version}:{of}", repository, attestation_tag(digest), att))
    return tags, signatures


def expected(rows: list[Expected]) -> Iterator[ExpectedTag]:
    for key, repository, tag, digest in rows:
        yield ExpectedTag(key, repository, tag, digest, "chart")


def subject_of(signature_tag_name: str) -> str:
    return "sha256:" + signature_tag_name.removeprefix("sha256-").rsplit(".", 1)[0]


def audit_rate(
    host: str, tags: list[Expected], signatures: list[Expected] | None, run_number: int, every: int
) -> float:
    """Version tags per second; with ``signatures``, what ``check_signatures`` asks: one tag listing
    per repository, and a HEAD of each ``.sig``/``.att`` not listed or whose turn run ``run_number`` is."""
    statuses: Counter[str] = Counter()
    with RegistryClient(host, retries=2) as client:
        started = time.perf_counter()
        rows = tags
        if signatures is not None:
            listing = TagListing(client)
            asked = [
                row
                for row in signatures
                if not listing.listed(row[1], row[2]) or content_due(subject_of(row[2]), run_number, every)
            ]
            statuses["ok"] += len(signatures) - len(asked)
            rows = tags + asked
        for result in audit_tags(client, expected(rows), concurrency=CONCURRENCY):
            statuses[result.status] += 1
        elapsed = time.perf_counter() - started
    total = len(tags) + len(signatures or [])
    if statuses != {"ok": total}:
        raise RuntimeError(f"the audit reported {dict(statuses)}, expected {total} ok")
    return len(tags) / elapsed  # version tags per second, whatever else had to be asked


def compare_audits(host: str, tags, signatures, rounds: int, every: int) -> tuple[list[float], list[float]]:
    """``rounds`` plain and signed audits, alternating who goes first; the signed ones are
    consecutive runs, so together they read every signature's content ``rounds / every`` times."""
    audit_rate(host, tags, signatures, 0, every)  # warm-up
    plain, signed = [], []
    for number in range(rounds):
        for who in ("plain", "signed") if number % 2 == 0 else ("signed", "plain"):
            if who == "plain":
                plain.append(audit_rate(host, tags, None, number, every))
            else:
                signed.append(audit_rate(host, tags, signatures, number, every))
    return plain, signed


def publish_release(host: str, key, layer_mib: int, *, sign: bool) -> float:
    """Push 2 images x 2 platforms and a chart into fresh repositories (and sign them); seconds."""
    run = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    with RegistryClient(host, retries=2) as client:
        for name in ("frontend", "backend"):
            repository = f"publish/{run}/{name}"
            layers = {p: os.urandom(layer_mib * 1024 * 1024) for p in ("linux/amd64", "linux/arm64")}
            index, index_ref, platforms = push_image_version(client, repository, "1.0.0", layers)
            if sign:
                sign_image_version(client, host, repository, key, index_ref, platforms, "1.0.0")
            client.put_manifest_immutable(repository, "1.0.0", index, OCI_INDEX)
        repository = f"publish/{run}/chart/threek8s"
        archive = os.urandom(16 * 1024)
        config = canonical_json({"name": "threek8s", "version": "1.0.0", "apiVersion": "v2"})
        client.push_blob(repository, sha256_digest(config), len(config), config)
        client.push_blob(repository, sha256_digest(archive), len(archive), archive)
        manifest = build_manifest(
            Descriptor(HELM_CONFIG, sha256_digest(config), len(config)),
            [Descriptor(HELM_CHART_CONTENT, sha256_digest(archive), len(archive))],
        )
        digest = client.put_manifest(repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
        if sign:
            sign_image(
                client, repository, ManifestRef(digest, OCI_MANIFEST, len(manifest)), key, f"{host}/{repository}"
            )
        client.put_manifest_immutable(repository, "1.0.0", manifest, OCI_MANIFEST)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Sizes:
    tags: int
    image_versions: int
    layer_mib: int
    rounds: int


QUICK = Sizes(tags=20, image_versions=3, layer_mib=1, rounds=1)
FULL = Sizes(tags=1000, image_versions=200, layer_mib=8, rounds=8)
#: AUDIT_SIGNATURE_RECHECK_RUNS's default: a signature's content is read one run in 4.
RECHECK_RUNS = 4


def run(quick: bool) -> list[Figure]:
    sizes = QUICK if quick else FULL
    require("docker-registry")
    workdir = Path(tempfile.mkdtemp(prefix="signing-bench-", dir=scratch_directory(2 * 1024**3)))
    registry = start_registry(workdir / "registry", {"log": {"level": "warn"}})
    key = load_private_key(generate_key_pair()[0])
    print(f"registry {registry.url} (storage {registry.root}), {os.cpu_count()} CPUs")
    try:
        with RegistryClient(registry.host, retries=2) as client:
            started = time.perf_counter()
            tags, signatures = populate_single(client, registry.host, key, sizes.tags)
            image_tags, image_signatures = populate_images(client, registry.host, key, sizes.image_versions)
            print(f"pushed and signed in {time.perf_counter() - started:.0f}s")

        plain, signed = compare_audits(registry.host, tags, signatures, sizes.rounds, RECHECK_RUNS)
        plain_b, signed_b = compare_audits(registry.host, image_tags, image_signatures, sizes.rounds, RECHECK_RUNS)

        publish_release(registry.host, key, sizes.layer_mib, sign=True)  # warm-up
        alone, with_signing = [], []
        for number in range(sizes.rounds):
            for sign in (False, True) if number % 2 == 0 else (True, False):
                seconds = publish_release(registry.host, key, sizes.layer_mib, sign=sign)
                (with_signing if sign else alone).append(seconds * 1000)
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return [
        ratio_figure(
            f"{len(tags):,} signed tags (one manifest and its .sig each): audit with signature checks (tag "
            f"listing, content one run in {RECHECK_RUNS}) / plain audit, version tags per s",
            signed,
            plain,
            "tags/s",
            Goal(">=", 0.5),
        ),
        ratio_figure(
            f"{len(image_tags):,} image versions shaped like ours (index + 2 platforms: 3 .sig, 2 .att per "
            "version tag), the same ratio",
            signed_b,
            plain_b,
            "tags/s",
        ),
        ratio_figure(
            f"publishing 2 images x 2 platforms ({sizes.layer_mib} MiB layers) + chart into a local registry: "
            "push + signing / push alone (SBOM aside; the goal is end to end: publish_signing)",
            with_signing,
            alone,
            "ms",
        ),
    ]


if __name__ == "__main__":
    main(run)
