"""What we hold about a set of references: the read model of verify and admission.

:func:`gather` reads, in a constant number of queries whatever the number of references, the
published images (by index digest, platform digest or tag; ``latest`` resolved to the highest
published version, as :func:`releases.pipelines.images.move_latest` moves it), the charts (for
verify), the open audit findings of what was found and of the tags asked, and the withdrawals of
their releases. Nothing here asks the registry: a tag is resolved through what we recorded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, JSONField, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import JSONObject

from ..choices import MOVING_TAG, ChartState, ImageState, WithdrawalAction
from ..models import AuditFinding, DockerImage, HelmChart, ReleaseWithdrawal
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
    """Rows whose ``platform_digests`` ({platform: {"digest": ...}}) holds one of ``digests``: on
    PostgreSQL a jsonpath predicate the GIN index of migration 0023 answers."""
    column = '"releases_dockerimage"."platform_digests"'
    if connection.vendor == "postgresql":
        ors = " || ".join(f"$.*.digest == {json.dumps(digest)}" for digest in digests)
        return RawSQL(f"{column} @@ %s::jsonpath", [ors], output_field=BooleanField())
    marks = ", ".join(["%s"] * len(digests))
    return RawSQL(
        f"EXISTS (SELECT 1 FROM json_each({column}) AS e WHERE json_extract(e.value, '$.digest') IN ({marks}))",
        digests,
        output_field=BooleanField(),
    )


def _withdrawal(release: str) -> Subquery:
    """The newest withdrawal record of the release at ``release`` (an outer reference), as JSON:
    the release is withdrawn when its action is ``withdraw`` (``models.withdrawals``)."""
    newest = ReleaseWithdrawal.objects.filter(release=OuterRef(release)).order_by("-sequence")
    record = JSONObject(action="action", reason="reason", actor="actor", created="created")
    return Subquery(newest.values(record=record)[:1], output_field=JSONField())


def _withdrawal_of(row: dict) -> Withdrawal | None:
    record = row.get("withdrawal")
    if isinstance(record, str):  # SQLite hands JSON back as text
        record = json.loads(record)
    if not record or record.get("action") != WithdrawalAction.WITHDRAW:
        return None
    created = record.get("created")
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00").replace(" ", "T"))
    return Withdrawal(record.get("reason") or "", created, record.get("actor") or "")


def _repository(registry: str, name: str) -> str:
    return f"{registry}/{name}"


def _add_image(records: Records, row: dict) -> None:
    repository = _repository(row["registry"], row["name"])
    withdrawal = _withdrawal_of(row)
    if withdrawal is not None and row["artifacts__release_id"]:
        records.withdrawals[row["artifacts__release_id"]] = withdrawal
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
    withdrawal = _withdrawal_of(row)
    if withdrawal is not None and row["artifacts__release_id"]:
        records.withdrawals[row["artifacts__release_id"]] = withdrawal
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
        return list(
            rows.distinct("registry", "name").values(*IMAGE_FIELDS, withdrawal=_withdrawal("artifacts__release"))
        )
    highest: dict[tuple[str, str], dict] = {}
    for row in rows.values(*IMAGE_FIELDS, withdrawal=_withdrawal("artifacts__release")):
        highest.setdefault((row["registry"], row["name"]), row)
    return list(highest.values())


def gather(references: Iterable[Reference], *, namespace: str, charts: bool = False) -> Records:
    """What we hold about ``references`` (those under ``namespace``, and bare digests).

    Queries: one for ``latest`` when a reference asks for it, one for images (by tag, index digest
    or platform digest, each row with its release's withdrawal), one for charts (``charts``), one
    for open findings: at most four, however many references.
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
    if digests:
        wanted |= Q(platform_hit=True)
    if wanted:
        images = DockerImage.objects.available()
        if digests:
            images = images.alias(platform_hit=_platform_digest_condition(digests))
        rows = images.filter(wanted).order_by().values(*IMAGE_FIELDS, withdrawal=_withdrawal("artifacts__release"))
        for row in rows:
            _add_image(records, row)
    if charts:
        wanted = Q(digest__in=digests) if digests else Q()
        for repository, tags in by_repository.items():
            registry, _, name = repository.rpartition("/")
            wanted |= Q(registry=registry, name=name, chart_version__in=sorted(tags))
        if wanted:
            rows = HelmChart.objects.indexed().filter(wanted).order_by()
            for row in rows.values(*CHART_FIELDS, withdrawal=_withdrawal("artifacts__release")):
                _add_chart(records, row)
    _gather_findings(records, ours)
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
