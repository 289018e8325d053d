"""Telling people about new audit findings (a signed webhook call per finding, an e-mail per run)
and about a release withdrawn or restored (one signed webhook call, one e-mail each).

A webhook call is signed over a timestamp and the body, so a receiver can refuse forged calls and
replays: ``X-Signature-Timestamp: <unix seconds>`` and ``X-Signature-256: sha256=<hex HMAC-SHA256
of "<timestamp>." + body under AUDIT_WEBHOOK_SECRET>``. Nothing is ever sent unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import httpx
from django.conf import settings
from django.core.mail import mail_admins
from django.utils import timezone

from releases.models import AuditFinding, ReleaseWithdrawal

logger = logging.getLogger(__name__)


def notify(findings) -> None:
    """Tell people about new findings: one signed webhook call per finding, one email per run."""
    findings = list(findings)
    if not findings:
        return
    delivered = []
    for finding in findings:
        if not settings.AUDIT_WEBHOOK_URL or send_webhook(finding):
            delivered.append(finding.pk)
    if settings.ADMINS:
        lines = [
            f"{f.severity.upper()} {f.type}: {f.artifact} expected {f.expected or '-'} got {f.actual or '-'}"
            for f in findings
        ]
        mail_admins(f"{len(findings)} new tag audit finding(s)", "\n".join(lines), fail_silently=True)
    AuditFinding.objects.filter(pk__in=delivered).update(notified_at=timezone.now())


def finding_payload(finding: AuditFinding) -> dict:
    return {
        "event": "audit.finding",
        "finding": {
            "id": finding.pk,
            "type": finding.type,
            "severity": finding.severity,
            "artifact": finding.artifact,
            "repository": finding.repository,
            "tag": finding.tag,
            "expected": finding.expected,
            "actual": finding.actual,
            "detail": finding.detail,
            "first_seen": finding.first_seen.isoformat(),
        },
    }


def signature_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """``X-Signature-Timestamp`` and ``X-Signature-256`` (HMAC-SHA256 of ``b"<timestamp>." + body``)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    return {
        "X-Signature-Timestamp": str(timestamp),
        "X-Signature-256": "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(),
    }


def send_webhook(finding: AuditFinding) -> bool:
    """POST the finding as JSON, signed with a timestamp (see the module docstring). Refuses to send
    without ``AUDIT_WEBHOOK_SECRET`` (settings refuse to start so; this guards a changed setting)."""
    return post_signed(finding_payload(finding), f"finding {finding.pk}")


def withdrawal_payload(record: ReleaseWithdrawal) -> dict:
    return {
        "event": f"release.{'withdrawn' if record.withdraws else 'restored'}",
        "release": {
            "version": record.release.version,
            "action": record.action,
            "reason": record.reason,
            "by": record.actor,
            "at": record.created.isoformat(),
        },
    }


def announce_withdrawal(record: ReleaseWithdrawal, *, email: bool = True) -> bool:
    """Announce a withdrawal or a restore: a signed webhook call (``release.withdrawn`` or
    ``release.restored``) and an e-mail to the admins. True when the webhook took it (or none is set)."""
    delivered = not settings.AUDIT_WEBHOOK_URL or post_signed(withdrawal_payload(record), f"withdrawal {record.pk}")
    if email and settings.ADMINS:
        what = "withdrawn" if record.withdraws else "restored"
        mail_admins(
            f"release {record.release.version} {what}",
            f"Release {record.release.version} was {what} by {record.actor} at {record.created.isoformat()}.\n\n"
            f"Reason: {record.reason}",
            fail_silently=True,
        )
    return delivered


def post_signed(payload: dict, what: str) -> bool:
    """POST ``payload`` to ``AUDIT_WEBHOOK_URL``, signed (see the module docstring); False when not delivered."""
    secret = settings.AUDIT_WEBHOOK_SECRET
    if not secret:
        logger.error("audit webhook not sent for %s: AUDIT_WEBHOOK_SECRET is not set", what)
        return False
    body = json.dumps(payload, sort_keys=True).encode()
    try:
        response = httpx.post(
            settings.AUDIT_WEBHOOK_URL,
            content=body,
            timeout=10,
            headers={"Content-Type": "application/json", **signature_headers(secret, body)},
        )
    except httpx.HTTPError as error:
        logger.warning("audit webhook failed for %s: %s", what, error)
        return False
    if response.status_code >= 300:
        logger.warning("audit webhook answered %s for %s", response.status_code, what)
        return False
    return True
