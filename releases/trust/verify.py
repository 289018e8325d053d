"""The verify use case: is each reference ours, published, signed where signing is configured,
and not withdrawn? The API (``/api/v1/verify/``) and ``manage.py verify`` both call
:func:`verify_references` and show :func:`report`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from releases.observability import metrics

from .decisions import Assessment, assess, invalid, parse_all
from .policy import current_policy
from .records import INDEX, PLATFORM, gather
from .references import Reference, ReferenceInvalid

logger = logging.getLogger("releases.trust.verify")


class ReferencesInvalid(ValueError):
    """Some references do not parse; ``problems`` names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def verify_references(texts: Sequence[str], *, refuse_invalid: bool = False) -> list[Assessment]:
    """One :class:`Assessment` per reference, in order. A reference may be a tag or a digest of an
    image index, a platform manifest or a chart (``oci://`` allowed), or a bare ``sha256:`` digest.
    ``refuse_invalid``: raise :class:`ReferencesInvalid` naming every reference that does not parse,
    before anything is read; else each is assessed "does not parse"."""
    parsed = parse_all(texts, bare_digest=True, oci_scheme=True)
    bad = [f"{text!r}: {error}" for text, error in parsed.items() if isinstance(error, ReferenceInvalid)]
    if bad and refuse_invalid:
        metrics.VERIFIED_REFERENCES.labels(outcome="invalid").inc(len(bad))
        raise ReferencesInvalid(bad)
    policy = current_policy()
    references = [ref for ref in parsed.values() if isinstance(ref, Reference)]
    records = gather(references, namespace=policy.namespace, charts=True)
    results = []
    outcomes: dict[str, int] = {}
    each = logger.isEnabledFor(logging.DEBUG)  # once: a line per reference is built only when it is written
    for text in texts:
        ref = parsed[text]
        result = invalid(text, ref) if isinstance(ref, ReferenceInvalid) else assess(ref, records, policy)
        outcome = "verified" if result.verified else ("invalid" if result.reference is None else "refused")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if each:
            why = f" ({'; '.join(result.problems)})" if result.problems else ""
            logger.debug("verify %s: %s%s", text, outcome, why)
        results.append(result)
    for outcome, count in outcomes.items():
        metrics.VERIFIED_REFERENCES.labels(outcome=outcome).inc(count)
    refused = [r for r in results if not r.verified]
    logger.info(
        "verify: %d reference(s), %s%s",
        len(results),
        ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())),
        f"; first refused: {refused[0].written} ({'; '.join(refused[0].problems)})" if refused else "",
    )
    return results


def _when(value) -> str | None:
    return value.isoformat() if value else None


def report(result: Assessment) -> dict[str, Any]:
    """What verify answers about one reference (the API's JSON, the command's source)."""
    body: dict[str, Any] = {
        "reference": result.written,
        "ours": result.ours,
        "verified": result.verified,
        "problems": list(result.problems),
    }
    ref = result.reference
    if ref is not None:
        body["repository"] = ref.repository or None
        body["tag"] = ref.tag or None
        body["digest"] = ref.digest or None
    record = result.record
    if record is None:
        return body
    body["artifact"] = {
        "kind": record.kind,
        "component": record.component,
        "repository": record.repository,
        "tag": record.tag,
        "digest": record.digest,
        "index_digest": record.index_digest if record.kind in (INDEX, PLATFORM) else None,
        "platform": record.platform or None,
        "platforms": record.platforms if record.kind == INDEX else None,
        "pinned": f"{record.repository}:{record.tag}@{record.digest}",
        "state": record.state,
    }
    body["release"] = {
        "version": record.release or None,
        "state": record.release_state or None,
        "published_at": _when(record.published_at),
    }
    body["signature"] = {
        "signed": bool(record.signature),
        "trusted": result.signed,
        "signed_with": record.signed_with or None,
        "signature": record.signature or None,
    }
    body["attestations"] = {
        platform: {"attestation": digest} for platform, digest in sorted(record.attestations.items())
    }
    body["tag_moved"] = (
        {
            "tag": result.moved.tag,
            "recorded": result.moved.expected,
            "registry_answered": result.moved.actual or None,
            "since": _when(result.moved.first_seen),
            "last_seen": _when(result.moved.last_seen),
        }
        if result.moved
        else None
    )
    body["findings"] = [
        {
            "type": finding.type,
            "severity": finding.severity,
            "tag": finding.tag,
            "expected": finding.expected,
            "actual": finding.actual,
            "detail": finding.detail,
            "first_seen": _when(finding.first_seen),
            "last_seen": _when(finding.last_seen),
        }
        for finding in result.findings
    ]
    body["withdrawn"] = (
        {"reason": result.withdrawal.reason, "at": _when(result.withdrawal.at), "by": result.withdrawal.by}
        if result.withdrawal
        else None
    )
    return body


def summary(result: Assessment) -> str:
    """One line for the command: what it is, or why not."""
    record = result.record
    if record is None:
        return "; ".join(result.problems)
    what = f"release {record.release or '-'} {record.component} {record.kind}"
    if record.platform:
        what += f" {record.platform}"
    signed = f"signed by {record.signed_with[:12]}" if result.signed else "unsigned"
    text = f"{what}, {record.repository}:{record.tag}@{record.digest}, {signed}"
    return text + (f": {'; '.join(result.problems)}" if result.problems else "")
