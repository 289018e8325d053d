"""Signing what the pipelines pushed, before a version tag points at it (cosign's scheme).

``images.push`` calls :func:`sign_pushed_image` after the platform manifests and the index are in
the registry by digest and before the version tag is put; ``charts`` calls :func:`sign_pushed_chart`
the same way. So a version tag never points at unsigned content, and a task that crashed after
signing and is delivered again adds nothing: signatures are deterministic (RFC 6979) and the
provenance is made only of what the row recorded, so every append finds its layer already there.

What gets signed, with ``SIGNING_KEY``:

- every platform manifest, the image index and the chart manifest: a simple signing layer in
  ``sha256-<hex>.sig`` naming the repository (``cosign verify --key``);
- every platform manifest: an in-toto statement with a SLSA provenance v1 predicate, in a DSSE
  envelope, in ``sha256-<hex>.att`` (``cosign verify-attestation --type slsaprovenance1``), and
  its SBOM (SPDX JSON by syft, :func:`attach_sbom`) as a second attestation (``--type spdxjson``).

syft is the slow part (seconds per platform, most of it its own start-up), so ``images.push`` starts
it for every platform at once when the push begins (:func:`sboms_in_background`): it runs beside
the uploads, the signatures and the other platforms' syft, and the SBOMs are attached last.

Without a key nothing is written and the row says it was published unsigned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from ..imagebuild import generate_sbom
from ..locks import signing_lock
from ..models import DockerImage, HelmChart, StateTransition
from ..oci import RegistryClient
from ..oci.manifest import ManifestRef, canonical_json
from ..signing import (
    SLSA_PROVENANCE_V1,
    Envelope,
    attach_attestation,
    envelope_key_ids,
    in_toto_statement,
    key_id,
    parse_statement,
    read_attestations,
    sign_envelope,
    sign_image,
    slsa_provenance,
    statement_names_digest,
    verify_image_attestations,
)
from ..signing_keys import signing_key, trusted_keys
from ..transitions import public_text
from .source import release_of

INDEX, CHART = "index", "chart"
#: The in-toto predicate type of an SPDX SBOM (what ``cosign attest --type spdxjson`` writes).
SPDX_PREDICATE_TYPE = "https://spdx.dev/Document"


@dataclass(frozen=True)
class SigningRecord:
    """What was signed, saved with ``mark_available``/``mark_indexed`` in the same transaction.

    ``signatures``: per manifest digest, ``{"of": "index" | <platform> | "chart", "signature":
    <.sig manifest digest>, "attestation": <.att manifest digest>}`` (attestation for platforms
    only); ``provenance``: per platform, the DSSE envelope of its SLSA provenance.
    """

    signed_with: str = ""
    signatures: dict[str, dict[str, str]] = field(default_factory=dict)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)

    def changes(self, *, with_provenance: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {"signed_with": self.signed_with, "signatures": self.signatures}
        if with_provenance:
            fields["provenance"] = self.provenance
        return fields


UNSIGNED = SigningRecord()


def build_type() -> str:
    """The SLSA ``buildType`` of our image builds (a URI under the builder's id)."""
    return f"{settings.PROVENANCE_BUILDER_ID.rstrip('/')}/build-types/docker-platform-image/v1"


@dataclass(frozen=True)
class PlatformSboms:
    """The SBOMs of an image's platforms as :func:`sboms_in_background` found them: ``attested``,
    the ``.att`` digests of the platforms that already carry an SBOM attestation by the key;
    ``started``, syft's runs (SPDX JSON) for the others."""

    attested: Mapping[str, str] = field(default_factory=dict)
    started: Mapping[str, Future[dict[str, Any]]] = field(default_factory=dict)

    def document(self, platform: str) -> dict[str, Any]:
        """``platform``'s SPDX document; raises what syft's run raised (``ImageBuildError``)."""
        return self.started[platform].result()


@contextmanager
def sboms_in_background(
    client: RegistryClient, image: DockerImage, platforms: Mapping[str, ManifestRef], layouts: Mapping[str, Path]
) -> Iterator[PlatformSboms]:
    """Start syft at once on the layout of every platform whose manifest has no SBOM attestation by
    the signing key yet (none without a key, nor when a redelivered push finds them all), a process
    per platform (at most one per CPU at a time), while the block pushes and signs.

    A platform's failure (a missing layout, syft failing) is raised only when its document is asked
    for. Leaving the block does not wait: a run nobody asked for (the push failed) ends on its own,
    bounded by syft's timeout.
    """
    key = signing_key()
    if key is None:
        yield PlatformSboms()
        return
    found = {platform: sbom_attested(client, image, ref, key) for platform, ref in sorted(platforms.items())}
    attested = {platform: digest for platform, digest in found.items() if digest}
    missing = [platform for platform in found if platform not in attested]
    if not missing:
        yield PlatformSboms(attested)
        return
    pool = ThreadPoolExecutor(max_workers=min(len(missing), os.cpu_count() or 1), thread_name_prefix="syft")
    started = {
        platform: pool.submit(generate_sbom, layouts[platform], source_name=image.repository, source_version=image.tag)
        for platform in missing
    }
    try:
        yield PlatformSboms(attested, started)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def sign_pushed_image(
    client: RegistryClient,
    image: DockerImage,
    index: ManifestRef,
    platforms: Mapping[str, ManifestRef],
    sboms: PlatformSboms,
) -> SigningRecord:
    """Sign each platform manifest and attach its provenance, sign the index, then attach each
    platform's SBOM (last: syft may still be running, see :func:`sboms_in_background`).

    ``index`` and ``platforms`` must already be in the image's repository (by digest). Returns
    :data:`UNSIGNED` without a configured key. Registry errors propagate (the task retries or fails
    the image; the tag has not been put).
    """
    key = signing_key()
    if key is None:
        return UNSIGNED
    repository, reference = image.repository_path, image.repository
    signatures: dict[str, dict[str, str]] = {}
    provenance: dict[str, dict[str, Any]] = {}
    with signing_lock(image.repository):
        for platform, ref in sorted(platforms.items()):
            signed = sign_image(client, repository, ref, key, reference)
            envelope = provenance_envelope(image, platform, ref.digest, key)
            attested = attach_attestation(client, repository, ref, envelope, signer=key.public_key())
            signatures[ref.digest] = {
                "of": platform,
                "signature": signed.manifest_digest,
                "attestation": attested.manifest_digest,
            }
            provenance[platform] = envelope.to_json()
        signed = sign_image(client, repository, index, key, reference)
        signatures[index.digest] = {"of": INDEX, "signature": signed.manifest_digest}
        for platform, ref in sorted(platforms.items()):
            if platform not in sboms.attested:  # else the .att already holds it, as recorded above
                # the .att as it stands with the SBOM beside the provenance
                signatures[ref.digest]["attestation"] = attach_sbom(client, image, ref, key, sboms.document(platform))
    return SigningRecord(key_id(key), signatures, provenance)


def sign_pushed_chart(client: RegistryClient, chart: HelmChart, manifest: ManifestRef) -> SigningRecord:
    """Sign the chart manifest (in the chart's repository by digest); :data:`UNSIGNED` without a key."""
    key = signing_key()
    if key is None:
        return UNSIGNED
    with signing_lock(chart.repository):
        signed = sign_image(client, chart.repository_path, manifest, key, chart.repository)
    return SigningRecord(key_id(key), {manifest.digest: {"of": CHART, "signature": signed.manifest_digest}})


def provenance_envelope(
    image: DockerImage, platform: str, manifest_digest: str, key: ec.EllipticCurvePrivateKey
) -> Envelope:
    """The signed in-toto statement of ``platform``'s SLSA provenance, about ``manifest_digest``.

    Made only of what the row recorded (times of the build's transitions, the commit, the base
    image's digest), so signing it again gives the same bytes.
    """
    statement = in_toto_statement(
        image.repository, manifest_digest, SLSA_PROVENANCE_V1, provenance_predicate(image, platform)
    )
    return sign_envelope(key, canonical_json(statement))


def provenance_predicate(image: DockerImage, platform: str) -> dict[str, Any]:
    """The SLSA provenance v1 predicate of one platform image of ``image``."""
    release = release_of(image.tag)
    started, finished = build_window(image)
    described = (image.platform_digests or {}).get(platform) or {}
    base_digest = described.get("base_image_digest") or _pinned_digest(image.base_image)
    return slsa_provenance(
        builder_id=settings.PROVENANCE_BUILDER_ID,
        build_type=build_type(),
        source_repository=public_text(settings.SOURCE_REPOSITORY_URL or ""),
        commit_sha=release.commit_sha,
        version=image.tag,
        started_on=started,
        finished_on=finished,
        build_args={
            name: public_text(str(value))
            for name, value in {**settings.IMAGE_BUILD_ARGS, **(image.build_args or {})}.items()
        },
        base_image=_final_stage_base(image),
        base_image_digest=base_digest,
        invocation_id=f"{image.repository}:{image.tag}/{platform}",
        stage_bases=[
            (stage["base"], stage["digest"])
            for stage in image.stage_bases or []
            if stage.get("digest") and not stage.get("final")
        ],
    )


def _final_stage_base(image: DockerImage) -> str | None:
    """The final stage's base as the Dockerfile names it (``base_image`` carries its digest too)."""
    final = next((stage for stage in image.stage_bases or [] if stage.get("final")), None)
    if final is not None:
        return final["base"]
    return image.base_image.partition("@")[0] if image.base_image else None


def build_window(image: DockerImage) -> tuple[datetime, datetime]:
    """When the build started and finished: the last ``start_build`` and ``start_scan``
    transitions; the recorded build date for both when the row never went through them."""
    moments = dict(
        StateTransition.objects.filter(
            content_type__app_label="releases",
            content_type__model="dockerimage",
            object_id=image.pk,
            transition__in=["start_build", "start_scan"],
        )
        .order_by("at", "pk")
        .values_list("transition", "at")
    )
    fallback = image.build_date or _label_date(image)
    started = moments.get("start_build", fallback)
    finished = moments.get("start_scan", fallback)
    return started, max(started, finished)


def _label_date(image: DockerImage) -> datetime:
    created = (image.labels or {}).get("org.opencontainers.image.created", "")
    return datetime.fromisoformat(created.replace("Z", "+00:00"))


def _pinned_digest(reference: str) -> str | None:
    _, at, digest = (reference or "").partition("@")
    return digest if at and digest.startswith("sha256:") else None


def sbom_attested(
    client: RegistryClient, image: DockerImage, manifest: ManifestRef, key: ec.EllipticCurvePrivateKey
) -> str:
    """The digest of ``manifest``'s ``.att`` when it holds an SBOM attestation by ``key`` that
    verifies; ``""`` when it does not."""
    found = verify_image_attestations(
        client, image.repository_path, manifest.digest, [key.public_key()], predicate_type=SPDX_PREDICATE_TYPE
    )
    return (found.manifest_digest or "") if found.ok else ""


def attach_sbom(
    client: RegistryClient,
    image: DockerImage,
    manifest: ManifestRef,
    key: ec.EllipticCurvePrivateKey,
    sbom: dict[str, Any],
) -> str:
    """Attach the platform image's SBOM (the SPDX document ``sbom``, by syft) as a signed in-toto
    attestation of predicate type :data:`SPDX_PREDICATE_TYPE`; return the ``.att`` manifest's digest.

    syft stamps every document with a creation time and a random namespace, so the same image
    never gives the same bytes twice: whether an SBOM attestation by this key is there already is
    asked once, by :func:`sboms_in_background`, and such a platform is not attached again (a
    redelivered push adds nothing).
    """
    statement = in_toto_statement(image.repository, manifest.digest, SPDX_PREDICATE_TYPE, sbom)
    envelope = sign_envelope(key, canonical_json(statement))
    return attach_attestation(
        client, image.repository_path, manifest, envelope, signer=key.public_key()
    ).manifest_digest


def read_sboms(client: RegistryClient, image: DockerImage) -> dict[str, dict[str, Any]]:
    """Per platform, the SPDX document of the SBOM attestation on its manifest that a trusted key
    signed, read from the registry (platforms without one are left out)."""
    trusted = trusted_keys()
    found: dict[str, dict[str, Any]] = {}
    for platform, described in sorted((image.platform_digests or {}).items()):
        digest = described["digest"]
        for layer in read_attestations(client, image.repository_path, digest) or []:
            if layer.predicate_type != SPDX_PREDICATE_TYPE or not envelope_key_ids(trusted, layer.envelope):
                continue
            statement = parse_statement(layer.envelope.payload)
            if statement["predicateType"] == SPDX_PREDICATE_TYPE and statement_names_digest(statement, digest):
                found[platform] = statement["predicate"]
                break
    return found
