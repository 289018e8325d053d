from django import template

from releases.models import AuditFinding

register = template.Library()


@register.simple_tag
def open_audit_findings() -> dict:
    """Open findings by severity, for the admin's front page."""
    findings = AuditFinding.objects.open()
    return {
        "critical": findings.filter(severity=AuditFinding.Severity.CRITICAL).count(),
        "warning": findings.filter(severity=AuditFinding.Severity.WARNING).count(),
    }
