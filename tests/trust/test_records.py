"""``releases.trust.records.gather``: a batch of references is read with another images query than a
few are (the open findings of all rows at once); both must answer the same records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from releases.models import AuditFinding
from releases.trust import records
from releases.trust.decisions import parse_all
from releases.trust.references import Reference
from releases.trust.withdrawal import restore_release, withdraw_release
from tests.fixtures.factories import digest_of

from .conftest import ours, publish

pytestmark = pytest.mark.django_db


def finding(kind: str, tag: str, *, image=None, name: str = "threek8s-backend", hours: int = 0, resolved=False):
    now = timezone.now()
    created = AuditFinding.objects.create(
        type=kind,
        severity=AuditFinding.Severity.CRITICAL,
        repository=ours(name),
        tag=tag,
        artifact=ours(name, f":{tag}"),
        docker_image=image,
        expected=digest_of(f"expected {kind} {tag}"),
        actual=digest_of(f"actual {kind} {tag}"),
        last_seen=now,
        resolved_at=now if resolved else None,
    )
    AuditFinding.objects.filter(pk=created.pk).update(first_seen=now - timedelta(hours=hours))  # auto_now_add
    return created


def read(texts: list[str], monkeypatch) -> tuple[records.Records, str]:
    """``gather`` of ``texts`` (charts too), and the text of its images query."""
    references = [ref for ref in parse_all(texts, bare_digest=True).values() if isinstance(ref, Reference)]
    statements = []
    rows = records._rows

    def recorded(sql, params):
        statements.append(sql)
        return rows(sql, params)

    with monkeypatch.context() as patch:
        patch.setattr(records, "_rows", recorded)
        found = records.gather(references, namespace=settings.REGISTRY_NAMESPACE, charts=True)
    return found, next(sql for sql in statements if "releases_dockerimage" in sql)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the batch query is PostgreSQL's")
def test_a_batch_reads_the_same_artifacts_findings_and_withdrawals_as_a_few_references(monkeypatch):
    published = [publish(f"1.{minor}.0") for minor in range(9)]
    first, second = published[0], published[1]
    # by image only, by tag only, both ways (counted once), two on one image (oldest first), a resolved one
    finding(AuditFinding.Type.SIGNATURE_MISSING, "sha256-other.sig", image=first.backend, hours=1)
    finding(AuditFinding.Type.MISMATCH, "1.0.0", hours=3)
    finding(AuditFinding.Type.MISMATCH, "1.1.0", image=second.backend, hours=2)
    finding(AuditFinding.Type.LATEST_BEHIND, "1.1.0", name="threek8s-frontend", hours=5)
    finding(AuditFinding.Type.MISSING, "1.2.0", image=published[2].frontend, resolved=True)
    withdraw_release("1.3.0", reason="broken", actor="alice")
    # only the newest record of a release counts: restored stays restored, withdrawn again says why again
    withdraw_release("1.4.0", reason="first thought", actor="alice")
    restore_release("1.4.0", reason="false alarm", actor="bob")
    withdraw_release("1.5.0", reason="bad build", actor="alice")
    restore_release("1.5.0", reason="rebuilt", actor="bob")
    withdraw_release("1.5.0", reason="bad again", actor="carol")
    texts = [ours(name, f":1.{minor}.0") for name in ("threek8s-backend", "threek8s-frontend") for minor in range(9)]
    texts += [ours("threek8s-backend", f"@{first.platform(first.backend)}"), second.frontend.digest]
    assert len(texts) >= records.BATCH_REFERENCES

    batch, batch_sql = read(texts, monkeypatch)
    monkeypatch.setattr(records, "BATCH_REFERENCES", len(texts) + 1)
    few, few_sql = read(texts, monkeypatch)

    assert batch_sql != few_sql  # each path was taken
    assert batch == few
    backend = batch.artifacts[(ours("threek8s-backend"), first.backend.digest)]
    assert backend.published_at == first.release.published_at  # to the microsecond, aware
    assert backend.published_at.utcoffset() is not None
    assert [f.type for f in batch.findings_of(backend)] == ["mismatch", "signature_missing"]
    assert [f.type for f in batch.findings[(ours("threek8s-backend"), "1.1.0")]] == ["mismatch"]
    assert [f.type for f in batch.findings[(ours("threek8s-frontend"), "1.1.0")]] == ["latest_behind"]
    assert not batch.findings.get((ours("threek8s-frontend"), "1.2.0"))
    assert sorted((w.reason, w.by) for w in batch.withdrawals.values()) == [("bad again", "carol"), ("broken", "alice")]
    assert len(batch.artifacts) == 18 + 1 + 0  # every index, the platform manifest named by digest
