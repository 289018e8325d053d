"""The scheduled tag-immutability audit: every published tag must still point at its recorded digest.

``run_audit`` streams the published tags from the database in batches into
``releases.audit.audit_tags`` (concurrent HEADs with connection reuse) and turns the results into
``AuditFinding`` rows: opened when the registry disagrees, kept open across runs, resolved when it
agrees again. Each result is written on its own, so a crash mid-run leaves every finding as true
as the last run that checked it; the next run marks the crashed run and completes. Two audits
never overlap (a PostgreSQL advisory lock).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..audit import ExpectedTag, TagResult, TagStatus, audit_tags, latest_behind
from ..audit.model import normalize_platforms
from ..charts import oci_tag
from ..choices import MOVING_TAG, ImageState
from ..locks import AUDIT_LOCK, exclusive
from ..models import AuditFinding, AuditRun, DockerImage, HelmChart, ReleaseVersion, default_release_layout
from ..notifications import notify
from ..oci import RegistryClient
from ..registry_client import registry_client, split_location
from ..signing import (
    SLSA_PROVENANCE_V1,
    PublicKeyLike,
    VerificationStatus,
    attestation_tag,
    key_id,
    signature_tag,
    verify_image_attestations,
    verify_image_signatures,
)
from ..signing_keys import signing_configured, trusted_keys
from .errors import time_limit_cause
from .signing import INDEX, SPDX_PREDICATE_TYPE

logger = logging.getLogger(__name__)

Type, Severity = AuditFinding.Type, AuditFinding.Severity
SEVERITY = {Type.LATEST_BEHIND: Severity.WARNING}
# What one tag's result can say; a result closes the open findings of these types it no longer shows.
TAG_TYPES = (Type.MISMATCH, Type.MISSING, Type.PLATFORM_DRIFT, Type.UNREACHABLE)
LATEST_TYPES = (Type.LATEST_BEHIND, Type.UNREACHABLE)
SIGNATURE_TYPES = (Type.SIGNATURE_MISSING, Type.SIGNATURE_INVALID)
ATTESTATION_TYPES = (Type.ATTESTATION_MISSING,)
#: Keys of the ``.sig``/``.att`` tags in the audit's stream: ``sig:<owner>:<pk>:<version>:<of>``.
SIGNATURE_KEYS = ("sig:", "att:")
#: The attestations every signed platform image carries.
REQUIRED_ATTESTATIONS = (SLSA_PROVENANCE_V1, SPDX_PREDICATE_TYPE)


class AuditAlreadyRunning(Exception):
    """Another audit holds the lock; this one did not start."""


def expected_tags(host: str, batch_size: int = 1000) -> Iterator[ExpectedTag]:
    """Published image version tags, chart versions and each image's ``latest``, read in batches."""
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").order_by("pk")
    fields = ("pk", "registry", "name", "tag", "digest", "platform_digests")
    for image in images.only(*fields).iterator(chunk_size=batch_size):
        yield ExpectedTag(
            f"image:{image.pk}", image.repository_path, image.tag, image.digest, "image", built_platforms(image)
        )
    charts = HelmChart.objects.indexed().filter(registry__startswith=f"{host}/").order_by("pk")
    for chart in charts.only("pk", "registry", "name", "chart_version", "digest").iterator(chunk_size=batch_size):
        yield ExpectedTag(
            f"chart:{chart.pk}",
            chart.repository_path,
            oci_tag(chart.chart_version),
            chart.digest,
            "chart",
        )
    for image in highest_published_images(host):
        yield ExpectedTag(f"latest:{image.pk}", image.repository_path, MOVING_TAG, image.digest, "image")


def built_platforms(image: DockerImage) -> frozenset[str]:
    """The platforms the image's index must list: those it was built for (``IMAGE_PLATFORMS`` when it
    was built), so changing the setting later does not turn every older image into drift."""
    recorded = image.platform_digests or {}
    return normalize_platforms(recorded or settings.IMAGE_PLATFORMS)


def highest_published_images(host: str) -> list[DockerImage]:
    """Per image repository, the highest published (non-pre-release) version: what ``latest`` must be."""
    highest: dict[str, DockerImage] = {}
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").exclude(tag__contains="-")
    for image in images.order_by("registry", "name", "-tag_order").only("pk", "registry", "name", "tag", "digest"):
        highest.setdefault(image.repository, image)
    return list(highest.values())


def findings_of(result: TagResult) -> list[tuple[str, str, str, str]]:
    """``(type, expected, actual, detail)`` of every problem one tag's result shows."""
    expected, actual = result.expected.digest, result.actual_digest or ""
    if result.expected.tag == MOVING_TAG and result.expected.key.startswith("latest:"):
        if result.status in (TagStatus.UNREACHABLE, TagStatus.ERROR):
            return [(Type.UNREACHABLE, expected, "", result.detail)]
        if result.ok:
            return []
        check = latest_behind(expected, result.actual_digest)
        return [(Type.LATEST_BEHIND, expected, actual, check.detail)]
    if result.status is TagStatus.OK:
        return []
    if result.status is TagStatus.MISSING:
        return [(Type.MISSING, expected, "", result.detail)]
    if result.status in (TagStatus.UNREACHABLE, TagStatus.ERROR):
        return [(Type.UNREACHABLE, expected, "", result.detail)]
    problems = [(Type.MISMATCH, expected, actual, result.detail)]
    if result.status is TagStatus.PLATFORM_DRIFT:
        live = ", ".join(sorted(result.live_platforms or ())) or "none"
        wanted = ", ".join(sorted(result.expected.platforms or ()))
        problems.append((Type.PLATFORM_DRIFT, wanted, live, result.detail))
    return problems


class FindingBook:
    """The open findings, in memory (they are few), so that the common "ok" result costs no query."""

    def __init__(self, run: AuditRun) -> None:
        self.run = run
        self.open: dict[tuple[str, str, str], AuditFinding] = {
            (f.type, f.repository, f.tag): f for f in AuditFinding.objects.open()
        }
        self.seen = Counter()
        self.new: list[AuditFinding] = []
        self.resolved = 0

    def record(
        self,
        repository: str,
        tag: str,
        checked_types: tuple[str, ...],
        problems,
        *,
        image_pk=None,
        chart_pk=None,
        artifact: str | None = None,
    ) -> None:
        now = timezone.now()
        found = {problem[0] for problem in problems}
        for kind, expected, actual, detail in problems:
            self.seen[kind] += 1
            finding = self.open.get((kind, repository, tag))
            if finding is None:
                finding = AuditFinding.objects.create(
                    type=kind,
                    severity=SEVERITY.get(kind, Severity.CRITICAL),
                    repository=repository,
                    tag=tag,
                    artifact=artifact or f"{repository}:{tag}",
                    docker_image_id=image_pk,
                    helm_chart_id=chart_pk,
                    expected=expected,
                    actual=actual,
                    detail=detail,
                    last_seen=now,
                    first_run=self.run,
                    last_run=self.run,
                )
                self.open[(kind, repository, tag)] = finding
                self.new.append(finding)
            else:
                AuditFinding.objects.filter(pk=finding.pk).update(
                    last_seen=now, last_run=self.run, actual=actual, detail=detail
                )
        if Type.UNREACHABLE in found:
            checked_types = ()  # nothing else is known about an unreachable tag: its findings stay
        for kind in checked_types:
            finding = self.open.get((kind, repository, tag))
            if finding is not None and kind not in found:
                AuditFinding.objects.filter(pk=finding.pk).update(resolved_at=now, last_run=self.run)
                del self.open[(kind, repository, tag)]
                self.resolved += 1


def run_audit(*, triggered_by: str = "", on_progress: Callable[[int, int], None] | None = None) -> AuditRun:
    """One audit of every published tag; returns the finished ``AuditRun``.

    Refuses (``AuditAlreadyRunning``) to start while another audit runs.
    """
    with exclusive(AUDIT_LOCK, 0) as acquired:
        if not acquired:
            raise AuditAlreadyRunning("another audit is running; wait for it to finish")
        AuditRun.objects.filter(status=AuditRun.Status.RUNNING).update(
            status=AuditRun.Status.CRASHED, finished=timezone.now(), error="the audit stopped before it finished"
        )
        run = AuditRun.objects.create(triggered_by=triggered_by)
        try:
            _check_every_tag(run, on_progress)
        except Exception as error:
            # Recorded now, not by the next audit: a crash (or the time limit) is visible at once.
            AuditRun.objects.filter(pk=run.pk, status=AuditRun.Status.RUNNING).update(
                status=AuditRun.Status.CRASHED, finished=timezone.now(), error=crash_reason(error)
            )
            raise
    notify(AuditFinding.objects.open().filter(notified_at__isnull=True))
    return run


def crash_reason(error: BaseException) -> str:
    if time_limit_cause(error) is not None:
        return (
            f"the audit exceeded its {settings.AUDIT_TIME_LIMIT_SECONDS} s time limit (AUDIT_TIME_LIMIT_SECONDS); "
            "the registry is slow or there are many tags: raise AUDIT_TIME_LIMIT_SECONDS or AUDIT_CONCURRENCY"
        )
    return f"unexpected {type(error).__name__}: {error} (the traceback is in the worker log)"


def _check_every_tag(run: AuditRun, on_progress: Callable[[int, int], None] | None) -> None:
    book = FindingBook(run)
    latest_tags = (
        DockerImage.objects.immutable_tags().exclude(tag__contains="-").values("registry", "name").distinct().count()
    )
    total = DockerImage.objects.immutable_tags().count() + HelmChart.objects.indexed().count() + latest_tags
    checked = 0
    unavailable_versions: set[str] = set()
    trusted = trusted_keys()
    trusted_ids = frozenset(key_id(key) for key in trusted)
    for host in registry_hosts():
        with registry_client(host) as client:
            unrecorded: list[SignedManifest] = []
            expected = chain(expected_tags(host), signature_tags(host, trusted_ids, unrecorded))
            for result in audit_tags(client, expected, concurrency=settings.AUDIT_CONCURRENCY):
                checked += 1
                if result.expected.key.startswith(SIGNATURE_KEYS):
                    record_signature_result(book, client, host, trusted, result)
                    if on_progress:
                        on_progress(checked, max(total, checked))
                    continue
                problems = findings_of(result)
                kind, _, pk = result.expected.key.partition(":")
                checked_types = LATEST_TYPES if kind == "latest" else TAG_TYPES
                book.record(
                    result.expected.repository,
                    result.expected.tag,
                    checked_types,
                    problems,
                    image_pk=int(pk) if kind == "image" else None,
                    chart_pk=int(pk) if kind == "chart" else None,
                )
                if kind == "image" and any(p[0] != Type.UNREACHABLE for p in problems):
                    unavailable_versions.add(result.expected.tag)
                if on_progress:
                    on_progress(checked, max(total, checked))
            for manifest in unrecorded:
                checked += 1
                for check in manifest.checks:
                    hint = unrecorded_hint(manifest, trusted_ids)
                    problems = verify_signed_manifest(client, check, manifest, trusted, hint)
                    record_signature_problems(book, manifest, check, problems)
    check_chart_app_versions(book, unavailable_versions)
    with transaction.atomic():
        run.finished = timezone.now()
        run.status = AuditRun.Status.SUCCEEDED
        run.tags_checked = checked
        run.findings_by_type = dict(Counter(f.type for f in book.open.values()))
        run.new_findings = len(book.new)
        run.resolved_findings = book.resolved
        run.save()


def registry_hosts() -> list[str]:
    hosts = {split_location(r)[0] for r in DockerImage.objects.immutable_tags().values_list("registry", flat=True)}
    hosts |= {split_location(r)[0] for r in HelmChart.objects.indexed().values_list("registry", flat=True)}
    return sorted(hosts)


def check_chart_app_versions(book: FindingBook, broken_versions: set[str]) -> None:
    """A published chart's appVersion must still resolve to available images with the recorded digests."""
    # Each release names its images in its own layout; a chart needs those of its appVersion.
    names_by_version = {
        release.version: list(release.image_names().values())
        for release in ReleaseVersion.objects.only("pk", "version", "layout")
    }
    default_names = list(default_release_layout().names().values())
    every_name = set(default_names).union(*names_by_version.values())
    available = set(
        DockerImage.objects.filter(state=ImageState.AVAILABLE, name__in=every_name).values_list("name", "tag")
    )
    for chart in HelmChart.objects.indexed().only("pk", "registry", "name", "chart_version", "app_version"):
        repository = chart.repository_path
        names = names_by_version.get(chart.app_version, default_names)
        missing = [name for name in names if (name, chart.app_version) not in available]
        problems = []
        if missing or chart.app_version in broken_versions:
            why = (
                f"images {', '.join(missing)} are not available"
                if missing
                else "an image of this version no longer has its recorded digest in the registry"
            )
            problems.append(
                (Type.CHART_APP_VERSION_BROKEN, chart.app_version, "", f"appVersion {chart.app_version}: {why}")
            )
        book.record(
            repository, oci_tag(chart.chart_version), (Type.CHART_APP_VERSION_BROKEN,), problems, chart_pk=chart.pk
        )


# -- signatures and attestations ----------------------------------------------------------------------


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


def signed_manifests(host: str, batch_size: int = 1000) -> Iterator[SignedManifest]:
    """Every published manifest to check on ``host``: of every row that says it was signed, and of
    every published row when signing is configured (an unsigned one then has no signature)."""
    images = DockerImage.objects.immutable_tags().filter(registry__startswith=f"{host}/").order_by("pk")
    charts = HelmChart.objects.indexed().filter(registry__startswith=f"{host}/").order_by("pk")
    if not signing_configured():
        images, charts = images.exclude(signed_with=""), charts.exclude(signed_with="")
    fields = ("pk", "registry", "name", "tag", "digest", "platform_digests", "signed_with", "signatures")
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
    fields = ("pk", "registry", "name", "chart_version", "digest", "signed_with", "signatures")
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


def signature_tags(host: str, trusted_ids: frozenset[str], unrecorded: list[SignedManifest]) -> Iterator[ExpectedTag]:
    """The ``.sig``/``.att`` tags whose manifests were recorded when a trusted key signed them,
    as tags for the audit to HEAD: the same digest is byte for byte what was verified when it was
    written. The others (published unsigned, or by a key no longer trusted) go to ``unrecorded``
    to be verified in full."""
    for manifest in signed_manifests(host):
        recorded = all(manifest.recorded_digest(check) for check in manifest.checks)
        if not recorded or manifest.signed_with not in trusted_ids:
            unrecorded.append(manifest)
            continue
        for check in manifest.checks:
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
