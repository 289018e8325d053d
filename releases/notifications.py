"""Telling people about new audit findings: a signed webhook call per finding, an e-mail per run."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx
from django.conf import settings
from django.core.mail import mail_admins
from django.utils import timezone

from .models import AuditFinding

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


def send_webhook(finding: AuditFinding) -> bool:
    """POST the finding as JSON, signed ``X-Signature-256: sha256=<HMAC-SHA256 of the body>``."""
    body = json.dumps(finding_payload(finding), sort_keys=True).encode()
    signature = "sha256=" + hmac.new(settings.AUDIT_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    try:
        response = httpx.post(
            settings.AUDIT_WEBHOOK_URL,
            content=body,
            timeout=10,
            headers={"Content-Type": "application/json", "X-Signature-256": signature},
        )
    except httpx.HTTPError as error:
        logger.warning("audit webhook failed for finding %s: %s; retried after the next run", finding.pk, error)
        return False
    if response.status_code >= 300:
        logger.warning("audit webhook answered %s for finding %s", response.status_code, finding.pk)
        return False
    return True
