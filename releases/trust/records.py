"""What we hold about a set of references: the read model of verify and admission.

:func:`gather` reads, in a constant number of queries whatever the number of references, the
published images (by index digest, platform digest or tag; ``latest`` resolved to the newest
published version that is not withdrawn, as ``releases.pipelines.latest`` moves it), the charts
(for verify), and with each row its release's withdrawal and its open audit findings. Nothing here
asks the registry: a tag is resolved through what we recorded.

The queries are written in SQL (PostgreSQL and SQLite), not built by the ORM: on the admission
webhook's hot path, compiling three ORM querysets with joins and subqueries cost several times
what PostgreSQL took to answer them (``bench/admission.py``). Each row carries its release's
newest withdrawal record and its open findings as JSON, so a review is one query (two when it
names ``latest``). Each query's text is composed once (:mod:`.queries`; the references are array
parameters: the tags a JSON array, the digests a text array on PostgreSQL), and on PostgreSQL it
runs prepared with a generic plan: planned once per connection, not per review.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import orjson
import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections

from ..choices import MOVING_TAG, ChartState, ImageState, LatestTagState, WithdrawalAction
from ..models import AuditFinding
from .queries import digests_parameter, statements
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


class ArtifactRecord(NamedTuple):
    """One manifest we published: an image index, one of its platform manifests, or a chart.

    ``tag`` is the version tag it was published at; ``signature`` the digest of the cosign
    ``.sig`` recorded for ``digest`` (empty: none recorded); ``attestations`` the ``.att`` per
    platform (all of an index's platforms, or the one of a platform manifest).

    A named tuple: immutable like a frozen dataclass, made in half its time (a frozen dataclass
    sets each of its 18 fields through ``object.__setattr__``); a batch makes one per row.
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
    """The answer of :func:`gather`: artifacts by (repository, digest) (image indexes and charts,
    and the platform manifests a reference names by digest), index digests by (repository, tag),
    findings and withdrawals."""

    artifacts: dict[tuple[str, str], ArtifactRecord] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    by_digest: dict[str, list[ArtifactRecord]] = field(default_factory=lambda: defaultdict(list))
    findings: dict[tuple[str, str], list[Finding]] = field(default_factory=lambda: defaultdict(list))
    findings_by_artifact: dict[tuple[str, int], list[Finding]] = field(default_factory=lambda: defaultdict(list))
    withdrawals: dict[int, Withdrawal] = field(default_factory=dict)
    #: repositories whose ``latest`` is not yet where a withdrawal or restore moves it (state: reason)
    latest_moving: dict[str, str] = field(default_factory=dict)

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
        if not self.findings:  # none at all (every row's findings are also filed by tag): the usual case
            return []
        key = ("image", record.image_pk) if record.image_pk else ("chart", record.chart_pk)
        found = list(self.findings_by_artifact.get(key, ()))
        found += [f for f in self.findings.get((record.repository, record.tag), ()) if f not in found]
        return found


class Row(NamedTuple):
    """A row of the images, charts or ``latest`` query, in the order of their columns (a chart's
    ``tag`` is its version); the JSON columns parsed. A named tuple: made from the fetched tuple in
    a third of the time ``dict(zip(columns, row))`` took (a batch reads a row per reference)."""

    pk: int
    registry: str
    name: str
    tag: str
    component: str
    state: str
    digest: str
    platform_digests: dict | None
    signed_with: str
    signatures: dict | None
    release_pk: int | None
    release: str | None
    release_state: str | None
    published_at: str | datetime | None
    withdrawal: dict | None
    findings: list | None
    latest_tag: dict | None


#: The positions of the columns holding JSON: Django hands jsonb (PostgreSQL) and JSON (SQLite)
#: back to raw cursors as text, which :func:`_rows` parses.
JSON_COLUMNS = tuple(
    Row._fields.index(name) for name in ("platform_digests", "signatures", "withdrawal", "findings", "latest_tag")
)


def _repository(registry: str, name: str) -> str:
    return f"{registry}/{name}"


def _add_image(records: Records, row: Row, digests: frozenset[str] = frozenset()) -> None:
    """The row's image index, and those of its platform manifests whose digest is in ``digests``
    (what the references name by digest: a reference by tag resolves to the index alone)."""
    repository = _repository(row.registry, row.name)
    _add_attachments(records, row, ("image", row.pk))
    index_digest = row.digest
    existing = records.artifacts.get((repository, index_digest))
    if existing is not None and existing.release_state == "published":
        return  # the same image through another artifact row: keep the published one
    signatures = row.signatures or {}
    described = row.platform_digests or {}
    platforms = {platform: (about or {}).get("digest", "") for platform, about in described.items()}
    # Unsigned images (no signature recorded) have no attestation either: nothing to look up.
    attestations = (
        {platform: signatures.get(digest, {}).get("attestation", "") for platform, digest in platforms.items()}
        if signatures
        else {}
    )
    signature = signatures.get(index_digest, {}).get("signature", "") if signatures else ""
    indexed = {p: a for p, a in attestations.items() if a}
    index = ArtifactRecord(
        kind=INDEX,
        repository=repository,
        tag=row.tag,
        digest=index_digest,
        index_digest=index_digest,
        platform="",
        component=row.component,
        signature=signature,
        attestations=indexed,
        platforms=platforms,
        image_pk=row.pk,
        **_release_fields(row),
    )
    records.add(index)
    records.tags[(repository, row.tag)] = index_digest
    if not digests:
        return
    for platform, digest in platforms.items():
        if digest in digests:
            signature = signatures.get(digest, {}).get("signature", "")
            attested = {platform: attestations[platform]} if attestations.get(platform) else {}
            records.add(
                index._replace(
                    kind=PLATFORM, digest=digest, platform=platform, signature=signature, attestations=attested
                )
            )


def _release_fields(row: Row) -> dict:
    """What an artifact row says of its state, its release and its signer."""
    return {
        "state": row.state,
        "release": row.release or "",
        "release_pk": row.release_pk,
        "release_state": row.release_state or "",
        "published_at": _when(row.published_at),
        "signed_with": row.signed_with,
    }


def _add_chart(records: Records, row: Row) -> None:
    repository = _repository(row.registry, row.name)
    _add_attachments(records, row, ("chart", row.pk))
    signatures = row.signatures or {}
    records.add(
        ArtifactRecord(
            kind=CHART,
            repository=repository,
            tag=row.tag,
            digest=row.digest,
            index_digest=row.digest,
            platform="",
            component=CHART,
            signature=signatures.get(row.digest, {}).get("signature", ""),
            attestations={},
            platforms={},
            chart_pk=row.pk,
            **_release_fields(row),
        )
    )
    records.tags.setdefault((repository, row.tag), row.digest)


def _when(value) -> datetime | None:
    """A timestamp from a raw row or from JSON (PostgreSQL's ISO form, SQLite's text), aware."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value if isinstance(value, str) else str(value))  # Z too, since 3.11
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _PreparedCursor(psycopg.Cursor):
    """Binds on the server and prepares every statement it runs (psycopg's ``prepare=True``)."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def _cursor():
    """On PostgreSQL, a cursor whose statements are prepared: planned once per connection
    (connections persist, ``CONN_MAX_AGE``), not at every review. Django's cursors bind on the
    client and never prepare; this one goes through Django's wrapper all the same (queries logged
    and counted, errors wrapped). Elsewhere (SQLite), Django's own cursor."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each attribute of the ``connection`` proxy looks it up again
    if db.vendor != "postgresql":
        return db.cursor()
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        cursor = _PreparedCursor(db.connection)
    return db.make_debug_cursor(cursor) if db.queries_logged else db.make_cursor(cursor)


def _fetch_prepared(db, sql: str, params: list) -> list[tuple]:
    """What :func:`_cursor` runs, without Django's wrapper when no query is logged or counted and
    no ``execute_wrapper`` is set (its layers: 5 us a query). Errors become Django's as there, and
    are remembered, so a broken connection is closed at the end of the request."""
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    db.validate_no_broken_transaction()
    with db.wrap_database_errors, _PreparedCursor(db.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _rows(sql: str, params: list) -> list[Row]:
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql" and not db.queries_logged and not db.execute_wrappers:
        fetched = _fetch_prepared(db, sql, params)
    else:
        with _cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
    return [_decoded(values) for values in fetched]


def _decoded(values: tuple) -> Row:
    """A fetched row with its JSON text parsed by orjson, a call per value (its calls cost less than
    joining the values into one document did for ``json.loads``). Values psycopg already loaded
    (``json`` columns, by its own loader) are left as they are."""
    values = list(values)
    for index in JSON_COLUMNS:
        value = values[index]
        if isinstance(value, (str, bytes)):  # noqa: UP038 - the tuple form is the faster
            values[index] = orjson.loads(value)
    return Row._make(values)


#: From this many references (distinct tags and digests), the images query of :func:`gather` is
#: :func:`.queries.statements`' ``images_batch`` on PostgreSQL (measured: even at 10, 30% less at 100).
BATCH_REFERENCES = 16


def _latest_rows(repositories: set[str]) -> list[Row]:
    """Per repository, what ``latest`` points at (``releases.pipelines.latest``): the highest
    published version that is neither a pre-release nor withdrawn; with the findings of its
    ``latest`` tag."""
    triples = [(*repository.rpartition("/")[::2], MOVING_TAG) for repository in sorted(repositories)]
    return _rows(statements(connection.vendor)["latest"], [json.dumps(triples)])


def _add_attachments(records: Records, row: Row, key: tuple[str, int]) -> None:
    """The row's withdrawal (when its newest record withdraws) and open findings, into ``records``."""
    record = row.withdrawal
    if not record and not row.findings:  # most rows
        return
    if record and record.get("action") == WithdrawalAction.WITHDRAW and row.release_pk:
        records.withdrawals[row.release_pk] = Withdrawal(
            record.get("reason") or "", _when(record.get("created")), record.get("actor") or ""
        )
    for found in row.findings or ():
        finding = Finding(**{**found, "first_seen": _when(found["first_seen"]), "last_seen": _when(found["last_seen"])})
        bucket = records.findings[(finding.repository, finding.tag)]
        if finding not in bucket:
            bucket.append(finding)
        if finding not in records.findings_by_artifact[key]:
            records.findings_by_artifact[key].append(finding)


def gather(references: Iterable[Reference], *, namespace: str, charts: bool = False) -> Records:
    """What we hold about ``references`` (those under ``namespace``, and bare digests).

    Queries: one for ``latest`` when a reference asks for it, one for images (by tag, index digest
    or platform digest), one for charts (``charts``); each row carries its release's withdrawal and
    its open findings. At most three, however many references.
    """
    records = Records()
    ours = [ref for ref in references if not ref.repository or ref.under(namespace)]
    if not ours:
        return records
    digests = sorted({ref.digest for ref in ours if ref.digest})
    tagged: set[tuple[str, str, str]] = set()
    latest: set[str] = set()
    for ref in ours:
        if not ref.repository:
            continue
        tag = ref.effective_tag
        if tag == MOVING_TAG:
            latest.add(ref.repository)
        elif tag:
            registry, _, name = ref.repository.rpartition("/")
            tagged.add((registry, name, tag))
    if latest:
        for row in _latest_rows(latest):
            _add_image(records, row)
            repository = _repository(row.registry, row.name)
            records.tags[(repository, MOVING_TAG)] = row.digest
            where = row.latest_tag
            if where and where.get("state") != LatestTagState.CURRENT:
                records.latest_moving[repository] = (
                    f"{where.get('state')}: {where.get('reason') or 'no reason recorded'}"
                )
    if not digests and not tagged:
        return records
    vendor = connection.vendor  # once: each attribute of the ``connection`` proxy costs 1.5 us
    composed = statements(vendor)
    wanted, digest_param = json.dumps(sorted(tagged)), digests_parameter(digests, vendor)
    wanted_digests = frozenset(digests)
    images = composed["images_batch" if len(tagged) + len(digests) >= BATCH_REFERENCES else "images"]
    for row in _rows(images, [digest_param, wanted, digest_param]):
        _add_image(records, row, wanted_digests)
    if charts:
        for row in _rows(composed["charts"], [digest_param, wanted]):
            _add_chart(records, row)
    return records
