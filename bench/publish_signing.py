"""What signing and attestations add to publishing the sample release end to end (issue 13):
the same release published by a worker without ``SIGNING_KEY`` and by one with it, in one run.

Run: ``.venv/bin/python -m bench.publish_signing [--quick]`` (about 5 minutes, as root: it starts
its own dockerd). The sample (``examples/``: 2 images x linux/amd64 + linux/arm64, vfs
driver, and its chart) goes through the real pipeline: a real Celery worker (concurrency 2) builds
on the engine, scans, exports, pushes, and publishes the chart with helm; with the key, every
platform manifest, index and the chart manifest are signed and each platform gets its SLSA
provenance and its SBOM (syft, SPDX JSON) attested. Its own PostgreSQL database
(``bench_publish_signing``, recreated), Redis database 7, registry and dockerd; the set-up is
``bench/_release_harness.py``'s, shared with ``bench/parallel_builds.py``.

Fairness. One registry and one engine serve every publish, so both sides meet the same machine
state; the worker is started afresh for each publish (the key is read at its start), with the
same environment but ``SIGNING_KEY``, outside the clock. Every publish is a new version, and every
version is written into the files the Dockerfiles copy, so each measured build runs the steps
that take those files (checked: a build whose every step BuildKit served from its cache stops the
run); the steps before them are cached alike on both sides, on the base image the engine already
holds. A signed warm-up publish, not
measured, pulls that base and brings syft and the code paths into the page cache, so the first
measured publish is no colder than the others. The order alternates each round (unsigned first,
then signed first, ...), ``EDGE_ROUNDS`` rounds; the medians are compared.

Each publish is checked: the release is published; with the key every image records the key id, a
signature for its index and each platform and a provenance per platform, the chart records its
signature, and the registry holds signatures, SLSA provenance and SPDX attestations that verify with the
public key; without it nothing is recorded and the index has no ``.sig``. Anything else stops
the run. The clock runs from ``publish_release`` until the release is ``published`` (polled every
0.25 s). Goal: signing adds <= 15% (signed / unsigned <= 1.15x, per round; the median of the rounds
is judged). Quick mode: linux/amd64 only, no warm-up, one round.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _release_harness as harness  # noqa: E402
from bench._database import use_database  # noqa: E402
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, rounds  # noqa: E402

if TYPE_CHECKING:  # the models need Django set up, which run() does first
    from releases.models import DockerImage, HelmChart
    from releases.oci import RegistryClient

GOAL = 0.15


def write_signing_key(directory: Path) -> tuple[Path, bytes]:
    """A fresh ECDSA P-256 key pair, the private half in ``directory/cosign.key`` (mode 0600)."""
    from releases.signing import generate_key_pair

    private_pem, public_pem = generate_key_pair()
    directory.mkdir(mode=0o700)
    path = directory / "cosign.key"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(private_pem)
    return path, public_pem


def check_publish(version: str, host: str, public_pem: bytes | None, platforms: int) -> None:
    """Stop the run unless ``version`` is published, built without cache hits, and signed and
    attested with ``public_pem`` (or, when it is ``None``, not signed at all)."""
    from releases.choices import ReleaseState
    from releases.models import ReleaseVersion
    from releases.oci import RegistryClient

    release = ReleaseVersion.objects.get(version=version)
    if release.state != ReleaseState.PUBLISHED:
        raise SystemExit(f"{version} is {release.state}, not published")
    images, charts = list(release.images()), list(release.charts())
    if len(images) != 2 or len(charts) != 1:
        raise SystemExit(f"{version}: {len(images)} images and {len(charts)} charts, expected 2 and 1")
    for image in images:
        for platform, record in image.build_steps.items():
            if all(step.get("cached") for step in record.get("steps", [])):
                raise SystemExit(f"{image.name}:{version} ({platform}) was served whole from the build cache")
    problems: list[str] = []
    with RegistryClient(host) as client:
        for artifact in [*images, *charts]:
            problems += (
                signing_problems(client, artifact, public_pem, platforms)
                if public_pem is not None
                else unsigned_problems(client, artifact)
            )
    if problems:
        side = "signed" if public_pem is not None else "unsigned"
        raise SystemExit(f"{version} ({side}): " + "; ".join(problems))


def signing_problems(
    client: RegistryClient, artifact: DockerImage | HelmChart, public_pem: bytes, platforms: int
) -> list[str]:
    """What is missing from a signed artifact, in its row or in the registry."""
    from releases.models import DockerImage
    from releases.pipelines.signing import INDEX, SPDX_PREDICATE_TYPE
    from releases.signing import (
        SLSA_PROVENANCE_V1,
        key_id,
        load_public_key,
        verify_image_attestations,
        verify_image_signatures,
    )

    name, repository = str(artifact), artifact.repository_path
    if artifact.signed_with != key_id(load_public_key(public_pem)):
        return [f"{name} is recorded as signed with {artifact.signed_with!r}"]
    expected = platforms + 1 if isinstance(artifact, DockerImage) else 1
    if len(artifact.signatures) != expected or artifact.digest not in artifact.signatures:
        return [f"{name} records {len(artifact.signatures)} signatures, expected {expected} with {artifact.digest}"]
    if isinstance(artifact, DockerImage) and len(artifact.provenance) != platforms:
        return [f"{name} records {len(artifact.provenance)} provenances, expected {platforms}"]
    problems = []
    for digest, signed in artifact.signatures.items():
        verdicts = [verify_image_signatures(client, repository, digest, [public_pem])]
        if isinstance(artifact, DockerImage) and signed["of"] != INDEX:
            verdicts += [
                verify_image_attestations(client, repository, digest, [public_pem], predicate_type=kind)
                for kind in (SLSA_PROVENANCE_V1, SPDX_PREDICATE_TYPE)
            ]
        problems += [f"{name} {signed['of']}: {v.detail}" for v in verdicts if not v.ok]
    return problems


def unsigned_problems(client: RegistryClient, artifact: DockerImage | HelmChart) -> list[str]:
    """What an artifact published without a key has that it should not: a record of signing, a
    ``.sig`` on what it published, a ``.att`` on a platform manifest."""
    from releases.models import DockerImage
    from releases.signing import VerificationStatus, verify_image_attestations, verify_image_signatures

    if artifact.signed_with or artifact.signatures or getattr(artifact, "provenance", None):
        return [f"{artifact} records signing ({artifact.signed_with!r})"]
    platforms = [d["digest"] for d in artifact.platform_digests.values()] if isinstance(artifact, DockerImage) else []
    verdicts = [verify_image_signatures(client, artifact.repository_path, d, []) for d in [artifact.digest, *platforms]]
    verdicts += [verify_image_attestations(client, artifact.repository_path, d, []) for d in platforms]
    return [f"{artifact}: {v.detail}" for v in verdicts if v.status is not VerificationStatus.MISSING]


def push_seconds(version: str) -> float:
    """Seconds the release's images spent pushing (and signing) and its chart uploading (and
    signing), added up: where signing happens, for the profile."""
    from releases.models import DockerImage, HelmChart, ReleaseVersion, StateTransition

    release = ReleaseVersion.objects.get(version=version)
    total = timedelta()
    spans = [
        (DockerImage, release.images(), "start_push", "mark_available"),
        (HelmChart, release.charts(), "start_upload", "mark_indexed"),
    ]
    for model, rows, start, end in spans:
        for pk in rows.values_list("pk", flat=True):
            moments = dict(
                StateTransition.objects.filter(
                    content_type__model=model._meta.model_name, object_id=pk, transition__in=[start, end]
                ).values_list("transition", "at")
            )
            total += moments[end] - moments[start]
    return total.total_seconds()


@dataclass(frozen=True)
class Publisher:
    """Publishes one version with a worker started for it, with or without the signing key."""

    registry: harness.SampleRegistry
    docker_host: str
    source_url: str
    commits: dict[str, str]
    helm: str
    workdir: Path
    key_path: Path
    public_pem: bytes
    platforms: tuple[str, ...]

    def publish(self, version: str, signed: bool) -> float:
        """The wall clock of publishing ``version``, checked (:func:`check_publish`)."""
        side = "signed" if signed else "unsigned"
        with harness.release_worker(
            self.registry,
            self.docker_host,
            self.source_url,
            self.helm,
            self.workdir,
            name=f"{side}-{version}",
            concurrency=2,
            extra_env={"IMAGE_PLATFORMS": ",".join(self.platforms)}
            | ({"SIGNING_KEY": str(self.key_path)} if signed else {}),
        ):
            elapsed = harness.publish_and_wait(f"{side} {version}", [version], self.commits)
        check_publish(version, self.registry.host, self.public_pem if signed else None, len(self.platforms))
        print(f"  {version} {side:>8}: {elapsed:6.1f} s (push/upload {push_seconds(version):.1f} s)")
        return elapsed


def seconds(samples: list[float]) -> str:
    return ", ".join(f"{t:.1f}" for t in samples)


def run(quick: bool) -> list[Figure]:
    helm = harness.require_root_and_helm()
    # quick: one platform, no warm-up, one round; the ratio means nothing then, the code paths are the same
    platforms = ("linux/amd64",) if quick else ("linux/amd64", "linux/arm64")
    count = rounds(quick, EDGE_ROUNDS)
    use_database("publish_signing", redis_db=7, IMAGE_PLATFORMS=",".join(platforms))
    plan = [(False, True) if number % 2 == 0 else (True, False) for number in range(count)]
    versions = [f"1.{number}.0" for number in range(1 + 2 * count)]  # in publish order: latest moves each time
    unsigned, signed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-publish-signing-") as tmp:
        workdir = Path(tmp)
        key_path, public_pem = write_signing_key(workdir / "key")
        source_url, commits = harness.sample_source(workdir, versions)
        with (
            harness.sample_registry(workdir) as registry,
            harness.docker_engine(workdir / "dockerd", registry) as docker_host,
        ):
            publisher = Publisher(
                registry, docker_host, source_url, commits, helm, workdir, key_path, public_pem, platforms
            )
            remaining = iter(versions)
            if not quick:
                print(f"{os.cpu_count()} CPUs; warm-up (signed, not measured):")
                publisher.publish(next(remaining), True)
            for number, order in enumerate(plan, 1):
                print(f"round {number}:")
                for side in order:
                    (signed if side else unsigned).append(publisher.publish(next(remaining), side))
    overheads = tuple(s / u for s, u in zip(signed, unsigned, strict=True))
    return [
        Figure(
            f"the sample release (2 images x {len(platforms)} platform(s) + chart) published end to end through "
            f"the real pipeline, cold builds, order alternating: with SIGNING_KEY / without (medians of {count})",
            statistics.median(signed),
            "s",
            statistics.median(unsigned),
            Goal("<=", 1 + GOAL),
            overheads,
            note=f"unsigned {seconds(unsigned)} s; signed {seconds(signed)} s",
        )
    ]


if __name__ == "__main__":
    main(run)
