"""What we hold about a set of references: the read model of verify and admission.

:func:`gather` reads, in a constant number of queries whatever the number of references, the
published images (by index digest, platform digest or tag; ``latest`` resolved to the highest
published version, as :func:`releases.pipelines.images.move_latest` moves it), the charts (for
verify), the open audit findings of what was found and of the tags asked, and the withdrawals of
their releases. Nothing here asks the registry: a tag is resolved through what we recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL

from ..choices import MOVING_TAG, ChartState, ImageState, WithdrawalAction
from ..models import AuditFinding, DockerImage, HelmChart, ReleaseWithdrawal
from ..models.withdrawals import current_withdrawals
from .references import Reference

INDEX, PLATFORM, CHART = "index", "platform", "chart"
#: Open findings saying the registry answers another digest for a tag than the one we recorded.
MOVED_TYPES = (AuditFinding.Type.MISMATCH, AuditFinding.Type.LATEST_BEHIND)


@dataclass(frozen=True, slots=True)
class Finding:
    """An open audit finding about an artifact or a tag."""

    type: str
    severity: str
    repository: str
    tag: str
    expected: str
    actual: str
    detail: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class Withdrawal:
    reason: str
    at: datetime
    by: str


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One manifest we published: an image index, one of its platform manifests, or a chart.

    ``tag`` is the version tag it was published at; ``signature`` the digest of the cosign
    ``.sig`` recorded for ``digest`` (empty: none recorded); ``attestations`` the ``.att`` per
    platform (all of an index's platforms, or the one of a platform manifest).
    """

    kind: str
    repository: str
    tag: str
    digest: str
    index_digest: str
    platform: str
    component: str
    state: str
    release: str
    release_pk: int | None
    release_state: str
    published_at: datetime | None
    signed_with: str
    signature: str
    attestations: dict[str, str]
    platforms: dict[str, str]
    image_pk: int | None = None
    chart_pk: int | None = None

    @property
    def published(self) -> bool:
        return self.state in (ImageState.AVAILABLE, ChartState.INDEXED) and self.release_state == "published"


@dataclass
class Records:
    """The answer of :func:`gather`: artifacts by (repository, digest), index digests by
    (repository, tag), findings and withdrawals."""

    artifacts: dict[tuple[str, str], ArtifactRecord] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    by_digest: dict[str, list[ArtifactRecord]] = field(default_factory=lambda: defaultdict(list))
    findings: dict[tuple[str, str], list[Finding]] = field(default_factory=lambda: defaultdict(list))
    findings_by_artifact: dict[tuple[str, int], list[Finding]] = field(default_factory=lambda: defaultdict(list))
    withdrawals: dict[int, Withdrawal] = field(default_factory=dict)

    def add(self, record: ArtifactRecord) -> None:
        self.artifacts[(record.repository, record.digest)] = record
        self.by_digest[record.digest].append(record)

    def resolve(self, reference: Reference) -> ArtifactRecord | None:
        """The artifact ``reference`` names: by digest when it has one, else by its (effective) tag."""
        if reference.digest:
            if not reference.repository:
                found = self.by_digest.get(reference.digest) or []
                return found[0] if found else None
            return self.artifacts.get((reference.repository, reference.digest))
        digest = self.tags.get((reference.repository, reference.effective_tag))
        return self.artifacts.get((reference.repository, digest)) if digest else None

    def tag_digest(self, repository: str, tag: str) -> str | None:
        """The index digest we recorded for ``repository:tag`` (``latest``: the highest published)."""
        return self.tags.get((repository, tag))

    def moved(self, repository: str, tag: str) -> Finding | None:
        """The open finding saying the registry was last seen answering another digest for the tag."""
        for finding in self.findings.get((repository, tag), ()):
            if finding.type in MOVED_TYPES:
                return finding
        return None

    def withdrawal_of(self, record: ArtifactRecord) -> Withdrawal | None:
        return self.withdrawals.get(record.release_pk) if record.release_pk else None

    def findings_of(self, record: ArtifactRecord) -> list[Finding]:
        """Open findings of the artifact: of its row (its tag, signatures, attestations) and of its tag."""
        key = ("image", record.image_pk) if record.image_pk else ("chart", record.chart_pk)
        found = list(self.findings_by_artifact.get(key, ()))
        found += [f for f in self.findings.get((record.repository, record.tag), ()) if f not in found]
        return found


IMAGE_FIELDS = (
    "pk",
    "registry",
    "name",
    "tag",
    "component",
    "state",
    "digest",
    "platform_digests",
    "signed_with",
    "signatures",
    "artifacts__release_id",
    "artifacts__release__version",
    "artifacts__release__state",
    "artifacts__release__published_at",
)
CHART_FIELDS = (
    "pk",
    "registry",
    "name",
    "chart_version",
    "state",
    "digest",
    "signed_with",
    "signatures",
    "artifacts__release_id",
    "artifacts__release__version",
    "artifacts__release__state",
    "artifacts__release__published_at",
)


def _platform_digest_condition(digests: list[str]) -> RawSQL:
    """Rows whose ``platform_digests`` ({platform: {"digest": ...}}) holds one of ``digests``."""
    column = '"releases_dockerimage"."platform_digests"'
    if connection.vendor == "postgresql":
        alternatives = " || ".join(f'@ == "{digest}"' for digest in digests)  # digests are sha256:<hex>
        return RawSQL(f"{column} @? %s::jsonpath", [f"$.*.digest ? ({alternatives})"], output_field=BooleanField())
    marks = ", ".join(["%s"] * len(digests))
    return RawSQL(
        f"EXISTS (SELECT 1 FROM json_each({column}) AS e WHERE json_extract(e.value, '$.digest') IN ({marks}))",
        digests,
        output_field=BooleanField(),
    )


def _repository(registry: str, name: str) -> str:
    return f"{registry}/{name}"


def _add_image(records: Records, row: dict) -> None:
    repository = _repository(row["registry"], row["name"])
    signatures = row["signatures"] or {}
    described = row["platform_digests"] or {}
    platforms = {platform: (about or {}).get("digest", "") for platform, about in described.items()}
    common = {
        "repository": repository,
        "tag": row["tag"],
        "index_digest": row["digest"],
        "component": row["component"],
        "state": row["state"],
        "release": row["artifacts__release__version"] or "",
        "release_pk": row["artifacts__release_id"],
        "release_state": row["artifacts__release__state"] or "",
        "published_at": row["artifacts__release__published_at"],
        "signed_with": row["signed_with"],
        "platforms": platforms,
        "image_pk": row["pk"],
    }
    attestations = {
        platform: signatures.get(digest, {}).get("attestation", "") for platform, digest in platforms.items()
    }
    existing = records.artifacts.get((repository, row["digest"]))
    if existing is not None and existing.release_state == "published":
        return  # the same image through another artifact row: keep the published one
    records.add(
        ArtifactRecord(
            kind=INDEX,
            digest=row["digest"],
            platform="",
            signature=signatures.get(row["digest"], {}).get("signature", ""),
            attestations={p: a for p, a in attestations.items() if a},
            **common,
        )
    )
    records.tags[(repository, row["tag"])] = row["digest"]
    for platform, digest in platforms.items():
        if digest:
            records.add(
                ArtifactRecord(
                    kind=PLATFORM,
                    digest=digest,
                    platform=platform,
                    signature=signatures.get(digest, {}).get("signature", ""),
                    attestations={platform: attestations[platform]} if attestations.get(platform) else {},
                    **common,
                )
            )


def _add_chart(records: Records, row: dict) -> None:
    repository = _repository(row["registry"], row["name"])
    signatures = row["signatures"] or {}
    records.add(
        ArtifactRecord(
            kind=CHART,
            repository=repository,
            tag=row["chart_version"],
            digest=row["digest"],
            index_digest=row["digest"],
            platform="",
            component=CHART,
            state=row["state"],
            release=row["artifacts__release__version"] or "",
            release_pk=row["artifacts__release_id"],
            release_state=row["artifacts__release__state"] or "",
            published_at=row["artifacts__release__published_at"],
            signed_with=row["signed_with"],
            signature=signatures.get(row["digest"], {}).get("signature", ""),
            attestations={},
            platforms={},
            chart_pk=row["pk"],
        )
    )
    records.tags.setdefault((repository, row["chart_version"]), row["digest"])


def withdrawn_versions():
    """The versions withdrawn now, as a subquery over the withdrawal records (few) rather than
    over every release."""
    newest = ReleaseWithdrawal.objects.filter(release=OuterRef("release")).order_by("-sequence").values("sequence")[:1]
    current = ReleaseWithdrawal.objects.filter(action=WithdrawalAction.WITHDRAW, sequence=Subquery(newest))
    return current.values("release__version")


def _latest_rows(repositories: set[str]) -> list[dict]:
    """Per repository, the highest published version that is neither a pre-release nor withdrawn:
    what ``latest`` points at (``releases.pipelines.latest``)."""
    wanted = Q()
    for repository in repositories:
        registry, _, name = repository.rpartition("/")
        wanted |= Q(registry=registry, name=name)
    rows = DockerImage.objects.immutable_tags().filter(wanted).exclude(tag__contains="-")
    rows = rows.exclude(tag__in=withdrawn_versions())
    rows = rows.order_by("registry", "name", "-tag_order")
    if connection.vendor == "postgresql":
        return list(rows.distinct("registry", "name").values(*IMAGE_FIELDS))
    highest: dict[tuple[str, str], dict] = {}
    for row in rows.values(*IMAGE_FIELDS):
        highest.setdefault((row["registry"], row["name"]), row)
    return list(highest.values())


def gather(references: Iterable[Reference], *, namespace: str, charts: bool = False) -> Records:
    """What we hold about ``references`` (those under ``namespace``, and bare digests).

    Queries: one for ``latest`` when a reference asks for it, one for images by tag or index
    digest, one for platform digests that were not index digests, one for charts (``charts``),
    one for open findings, one for the withdrawals in force: at most six, however many references.
    """
    records = Records()
    ours = [ref for ref in references if not ref.repository or ref.under(namespace)]
    if not ours:
        return records
    digests = sorted({ref.digest for ref in ours if ref.digest})
    by_repository: dict[str, set[str]] = defaultdict(set)
    latest: set[str] = set()
    for ref in ours:
        if not ref.repository:
            continue
        tag = ref.effective_tag
        if tag == MOVING_TAG:
            latest.add(ref.repository)
        elif tag:
            by_repository[ref.repository].add(tag)
    if latest:
        for row in _latest_rows(latest):
            _add_image(records, row)
            records.tags[(_repository(row["registry"], row["name"]), MOVING_TAG)] = row["digest"]
    wanted = Q(digest__in=digests) if digests else Q()
    for repository, tags in by_repository.items():
        registry, _, name = repository.rpartition("/")
        wanted |= Q(registry=registry, name=name, tag__in=sorted(tags))
    if wanted:
        for row in DockerImage.objects.available().filter(wanted).values(*IMAGE_FIELDS):
            _add_image(records, row)
    unresolved = [digest for digest in digests if digest not in records.by_digest]
    if unresolved:
        platform_rows = (
            DockerImage.objects.available().alias(hit=_platform_digest_condition(unresolved)).filter(hit=True)
        )
        for row in platform_rows.values(*IMAGE_FIELDS):
            _add_image(records, row)
    if charts:
        wanted = Q(digest__in=digests) if digests else Q()
        for repository, tags in by_repository.items():
            registry, _, name = repository.rpartition("/")
            wanted |= Q(registry=registry, name=name, chart_version__in=sorted(tags))
        if wanted:
            for row in HelmChart.objects.indexed().filter(wanted).values(*CHART_FIELDS):
                _add_chart(records, row)
    _gather_findings(records, ours)
    releases = {record.release_pk for record in records.artifacts.values() if record.release_pk}
    if releases:
        for pk, withdrawal in current_withdrawals(releases).items():
            records.withdrawals[pk] = Withdrawal(withdrawal.reason, withdrawal.created, withdrawal.actor)
    return records


def _gather_findings(records: Records, references: list[Reference]) -> None:
    found = list(records.artifacts.values())
    image_pks = {record.image_pk for record in found if record.image_pk}
    chart_pks = {record.chart_pk for record in found if record.chart_pk}
    tags_asked = {(ref.repository, ref.effective_tag) for ref in references if ref.repository and ref.effective_tag}
    wanted = Q()
    if image_pks:
        wanted |= Q(docker_image_id__in=image_pks)
    if chart_pks:
        wanted |= Q(helm_chart_id__in=chart_pks)
    if tags_asked:
        wanted |= Q(repository__in={r for r, _ in tags_asked}, tag__in={t for _, t in tags_asked})
    if not wanted:
        return
    fields = ("type", "severity", "repository", "tag", "expected", "actual", "detail", "first_seen", "last_seen")
    rows = AuditFinding.objects.open().filter(wanted).order_by("first_seen", "pk")
    for row in rows.values(*fields, "docker_image_id", "helm_chart_id"):
        image_pk, chart_pk = row.pop("docker_image_id"), row.pop("helm_chart_id")
        finding = Finding(**row)
        records.findings[(finding.repository, finding.tag)].append(finding)
        if image_pk:
            records.findings_by_artifact[("image", image_pk)].append(finding)
        if chart_pk:
            records.findings_by_artifact[("chart", chart_pk)].append(finding)
