"""The signature and attestation checks of a batch: every signed manifest's ``.sig``/``.att`` exists
(one tag listing per repository), and its content is verified in its turn
(``AUDIT_SIGNATURE_RECHECK_RUNS``) or whenever its digest changed or a finding is open."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings

from releases.adapters.signing_keys import signing_configured, trusted_keys
from releases.audit import ExpectedTag, TagListing, TagResult, TagStatus, audit_tags, content_due
from releases.charts import oci_tag
from releases.models import AuditFinding, DockerImage, HelmChart
from releases.oci import RegistryClient
from releases.pipelines.audit.findings import ATTESTATION_TYPES, SIGNATURE_TYPES, FindingBook
from releases.pipelines.audit.planning import HEARTBEAT_EVERY, HOST_SIGNATURES, SIGNATURES, Shard, ShardOutcome
from releases.pipelines.signing import INDEX, SPDX_PREDICATE_TYPE
from releases.signing import (
    SLSA_PROVENANCE_V1,
    PublicKeyLike,
    VerificationStatus,
    attestation_tag,
    key_id,
    signature_tag,
    verify_image_attestations,
    verify_image_signatures,
)

logger = logging.getLogger(__name__)

Type, Severity = AuditFinding.Type, AuditFinding.Severity


#: Keys of the ``.sig``/``.att`` tags in the audit's stream: ``sig:<owner>:<pk>:<version>:<of>``.
SIGNATURE_KEYS = ("sig:", "att:")


#: The attestations every signed platform image carries.
REQUIRED_ATTESTATIONS = (SLSA_PROVENANCE_V1, SPDX_PREDICATE_TYPE)


@dataclass(frozen=True)
class SignedManifest:
    """One published manifest (image index, platform manifest, chart manifest) whose cosign
    signature, and for a platform its attestations, the audit checks; with what was recorded."""

    owner: str  # "image" or "chart"
    pk: int
    host: str
    repository: str
    version: str
    digest: str
    of: str  # "index", a platform, or "chart"
    signed_with: str
    recorded: dict[str, str]

    @property
    def docker_reference(self) -> str:
        return f"{self.host}/{self.repository}"

    @property
    def checks(self) -> tuple[str, ...]:
        return ("sig",) if self.of in (INDEX, "chart") else ("sig", "att")

    def key(self, check: str) -> str:
        return f"{check}:{self.owner}:{self.pk}:{self.version}:{self.of}"

    def tag(self, check: str) -> str:
        return signature_tag(self.digest) if check == "sig" else attestation_tag(self.digest)

    def recorded_digest(self, check: str) -> str:
        return self.recorded.get("signature" if check == "sig" else "attestation", "")

    def artifact(self, check: str) -> str:
        what = "signature" if check == "sig" else "attestations"
        return f"{self.docker_reference}:{self.version} {self.of} {self.digest[:19]} ({what})"

    @classmethod
    def from_key(cls, key: str, host: str, repository: str, tag: str) -> tuple[str, SignedManifest]:
        check, owner, pk, version, of = key.split(":", 4)
        digest = "sha256:" + tag.removeprefix("sha256-").rsplit(".", 1)[0]
        return check, cls(owner, int(pk), host, repository, version, digest, of, "", {})


def signed_manifests(shard: Shard, batch_size: int = 1000) -> Iterator[SignedManifest]:
    """Every published manifest the signatures batch ``shard`` checks: of every row of its range
    that says it was signed, and of every row when signing is configured (an unsigned one then has
    no signature)."""
    host = shard.host
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").order_by("pk")
    charts = HelmChart.objects.indexed().filter(registry__startswith=f"{host}/").order_by("pk")
    if shard.kind != HOST_SIGNATURES:  # a range of one kind's rows; the other kind has none in it
        owner, in_range = shard.kind.removesuffix(SIGNATURES), {"pk__gte": shard.first, "pk__lte": shard.last}
        images = images.filter(**in_range) if owner == "image" else images.none()
        charts = charts.filter(**in_range) if owner == "chart" else charts.none()
    if not signing_configured():
        images, charts = images.exclude(signed_with=""), charts.exclude(signed_with="")
    fields = ("pk", "state", "registry", "name", "tag", "digest", "platform_digests", "signed_with", "signatures")
    for image in images.only(*fields).iterator(chunk_size=batch_size):
        recorded = image.signatures or {}
        subjects = [(image.digest, INDEX)]
        subjects += [(described["digest"], platform) for platform, described in (image.platform_digests or {}).items()]
        for digest, of in subjects:
            yield SignedManifest(
                "image",
                image.pk,
                host,
                image.repository_path,
                image.tag,
                digest,
                of,
                image.signed_with,
                recorded.get(digest, {}),
            )
    fields = ("pk", "state", "registry", "name", "chart_version", "digest", "signed_with", "signatures")
    for chart in charts.only(*fields).iterator(chunk_size=batch_size):
        yield SignedManifest(
            "chart",
            chart.pk,
            host,
            chart.repository_path,
            oci_tag(chart.chart_version),
            chart.digest,
            "chart",
            chart.signed_with,
            (chart.signatures or {}).get(chart.digest, {}),
        )


def signature_tags(
    shard: Shard,
    trusted_ids: frozenset[str],
    unrecorded: list[SignedManifest],
    ask: Callable[[SignedManifest, str], bool],
    settled: Callable[[], None],
) -> Iterator[ExpectedTag]:
    """The ``.sig``/``.att`` tags whose manifests were recorded when a trusted key signed them,
    as tags for the audit to HEAD when ``ask(manifest, check)`` says so (else ``settled()``): the
    same digest is byte for byte what was verified when it was written. The others (published
    unsigned, or by a key no longer trusted) go to ``unrecorded`` to be verified in full."""
    for manifest in signed_manifests(shard):
        recorded = all(manifest.recorded_digest(check) for check in manifest.checks)
        if not recorded or manifest.signed_with not in trusted_ids:
            unrecorded.append(manifest)
            continue
        for check in manifest.checks:
            if not ask(manifest, check):
                settled()
                continue
            yield ExpectedTag(
                manifest.key(check),
                manifest.repository,
                manifest.tag(check),
                manifest.recorded_digest(check),
                "chart",  # an OCI image manifest: a HEAD says all
            )


def record_signature_result(
    book: FindingBook, client: RegistryClient, host: str, trusted: Sequence[PublicKeyLike], result: TagResult
) -> None:
    """Turn the HEAD of one ``.sig``/``.att`` tag into findings: the recorded digest is fine, a gone
    tag is missing, another digest is verified in full (another signer may have appended)."""
    expected = result.expected
    check, manifest = SignedManifest.from_key(expected.key, host, expected.repository, expected.tag)
    if result.status in (TagStatus.UNREACHABLE, TagStatus.ERROR):
        return  # nothing is known: the version tag's own check reports the registry; findings stay
    if result.status is TagStatus.OK:
        problems: list[tuple[str, str, str, str]] = []
    elif result.status is TagStatus.MISSING:
        kind = Type.SIGNATURE_MISSING if check == "sig" else Type.ATTESTATION_MISSING
        problems = [(kind, manifest.digest, "", f"{expected.repository}:{expected.tag} is gone from the registry")]
    else:
        problems = verify_signed_manifest(client, check, manifest, trusted)
    record_signature_problems(book, manifest, check, problems)


def unrecorded_hint(manifest: SignedManifest, trusted_ids: frozenset[str]) -> str:
    """Why a manifest had no recorded signature to compare with, for the finding's detail."""
    if not manifest.signed_with:
        return " (published unsigned: no SIGNING_KEY was configured then)"
    if manifest.signed_with not in trusted_ids:
        return (
            f" (signed with key {manifest.signed_with[:16]}, which is not trusted now: add its public key "
            "to TRUSTED_SIGNING_KEYS)"
        )
    return ""


def verify_signed_manifest(
    client: RegistryClient, check: str, manifest: SignedManifest, trusted: Sequence[PublicKeyLike], hint: str = ""
) -> list[tuple[str, str, str, str]]:
    """Read and verify the ``.sig`` (or every required attestation in the ``.att``) of one manifest."""
    if check == "sig":
        verdict = verify_image_signatures(
            client, manifest.repository, manifest.digest, trusted, docker_reference=manifest.docker_reference
        )
        if verdict.ok:
            return []
        kind = Type.SIGNATURE_MISSING if verdict.status is VerificationStatus.MISSING else Type.SIGNATURE_INVALID
        return [(kind, manifest.digest, verdict.manifest_digest or "", verdict.detail + hint)]
    failed = []
    for predicate_type in REQUIRED_ATTESTATIONS:
        verdict = verify_image_attestations(
            client, manifest.repository, manifest.digest, trusted, predicate_type=predicate_type
        )
        if not verdict.ok:
            failed.append(f"{predicate_type}: {verdict.detail}")
    if not failed:
        return []
    return [(Type.ATTESTATION_MISSING, manifest.digest, "", "; ".join(failed) + hint)]


def record_signature_problems(
    book: FindingBook, manifest: SignedManifest, check: str, problems: list[tuple[str, str, str, str]]
) -> None:
    book.record(
        manifest.repository,
        manifest.tag(check),
        SIGNATURE_TYPES if check == "sig" else ATTESTATION_TYPES,
        problems,
        image_pk=manifest.pk if manifest.owner == "image" else None,
        chart_pk=manifest.pk if manifest.owner == "chart" else None,
        artifact=manifest.artifact(check),
    )


def check_signatures(
    book: FindingBook,
    client: RegistryClient,
    shard: Shard,
    outcome: ShardOutcome,
    report: Callable[[], None],
    on_progress: Callable[[int], None] | None,
) -> None:
    """A signatures batch: every signed manifest's ``.sig`` (and a platform's
    ``.att``) must be listed in its repository; its digest is HEADed (and compared with the
    recorded one) when it is not listed, has an open finding, or its turn has come (one run in
    ``AUDIT_SIGNATURE_RECHECK_RUNS``); read and verified in full when it was never recorded."""
    host = shard.host
    trusted = trusted_keys()
    trusted_ids = frozenset(key_id(key) for key in trusted)
    listing = TagListing(client)
    every, run_number = settings.AUDIT_SIGNATURE_RECHECK_RUNS, book.run.pk

    def ask(manifest: SignedManifest, check: str) -> bool:
        tag = manifest.tag(check)
        return (
            not listing.listed(manifest.repository, tag)
            or book.any_open(manifest.repository, tag, SIGNATURE_TYPES if check == "sig" else ATTESTATION_TYPES)
            or content_due(manifest.digest, run_number, every)
        )

    def settled() -> None:
        outcome.checked += 1
        if outcome.checked % HEARTBEAT_EVERY == 0:
            report()
        if on_progress:
            on_progress(outcome.checked)

    unrecorded: list[SignedManifest] = []
    expected = signature_tags(shard, trusted_ids, unrecorded, ask, settled)
    for result in audit_tags(client, expected, concurrency=settings.AUDIT_CONCURRENCY):
        record_signature_result(book, client, host, trusted, result)
        settled()
    for manifest in unrecorded:
        outcome.checked += 1
        hint = unrecorded_hint(manifest, trusted_ids)
        for check in manifest.checks:
            if listing.listed(manifest.repository, manifest.tag(check)) is False:
                kind = Type.SIGNATURE_MISSING if check == "sig" else Type.ATTESTATION_MISSING
                detail = f"{manifest.repository}:{manifest.tag(check)} is not in the registry{hint}"
                problems = [(kind, manifest.digest, "", detail)]
            else:
                problems = verify_signed_manifest(client, check, manifest, trusted, hint)
            record_signature_problems(book, manifest, check, problems)
