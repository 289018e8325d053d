from __future__ import annotations

from django.db import models
from django.db.models import Q


class AuditRun(models.Model):
    """One pass of the tag-immutability audit over every published tag.

    A run is sharded: its tags are checked in batches (``shards_total``) by any worker of the
    ``audits`` queue, each batch moving ``heartbeat_at`` as it goes. At most one run is
    ``running`` (a database constraint); one whose heartbeat is older than a batch's hard time
    limit is dead (its worker was lost) and the next audit closes it ``crashed``.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        CRASHED = "crashed"

    started = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    tags_checked = models.PositiveIntegerField(default=0)
    findings_by_type = models.JSONField(default=dict, blank=True, help_text="Open findings seen, by type.")
    new_findings = models.PositiveIntegerField(default=0)
    resolved_findings = models.PositiveIntegerField(default=0)
    triggered_by = models.CharField(max_length=100, blank=True, help_text="beat, admin, api or command")
    error = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last progress of any of its batches; a running run silent too long is dead."
    )
    shards_total = models.PositiveIntegerField(default=0, help_text="Batches the tags were split into.")
    shards_done = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="running"),
                name="audit_run_one_running",
                violation_error_message="another audit is running; wait for it to finish",
            )
        ]

    def __str__(self) -> str:
        return f"audit {self.started:%Y-%m-%d %H:%M} ({self.status})"


class AuditFindingQuerySet(models.QuerySet):
    def open(self) -> AuditFindingQuerySet:
        return self.filter(resolved_at__isnull=True)


class AuditFinding(models.Model):
    """Something the registry says that differs from what we published; open until it agrees again.

    One open finding per (type, repository, tag): a finding seen again only moves ``last_seen``;
    when the registry agrees again it is resolved, and the row stays as history.
    """

    class Type(models.TextChoices):
        MISMATCH = "mismatch"
        MISSING = "missing"
        PLATFORM_DRIFT = "platform_drift"
        CHART_APP_VERSION_BROKEN = "chart_app_version_broken"
        LATEST_BEHIND = "latest_behind"
        UNREACHABLE = "unreachable"
        SIGNATURE_MISSING = "signature_missing"
        SIGNATURE_INVALID = "signature_invalid"
        ATTESTATION_MISSING = "attestation_missing"

    class Severity(models.TextChoices):
        CRITICAL = "critical"
        WARNING = "warning"

    type = models.CharField(max_length=32, choices=Type.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    repository = models.CharField(max_length=500)
    tag = models.CharField(max_length=128)
    artifact = models.CharField(max_length=600, help_text="What was published: repository:tag.")
    docker_image = models.ForeignKey(
        "releases.DockerImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_findings"
    )
    helm_chart = models.ForeignKey(
        "releases.HelmChart", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_findings"
    )
    expected = models.CharField(max_length=255, blank=True)
    actual = models.CharField(max_length=255, blank=True)
    detail = models.TextField(blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    first_run = models.ForeignKey(AuditRun, on_delete=models.SET_NULL, null=True, related_name="+")
    last_run = models.ForeignKey(AuditRun, on_delete=models.SET_NULL, null=True, related_name="findings")
    notified_at = models.DateTimeField(null=True, blank=True)

    objects = AuditFindingQuerySet.as_manager()

    class Meta:
        ordering = ["resolved_at", "-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["type", "repository", "tag"],
                condition=Q(resolved_at__isnull=True),
                name="audit_finding_open_once",
            )
        ]
        indexes = [models.Index(fields=["resolved_at", "type"])]

    def __str__(self) -> str:
        state = "open" if self.resolved_at is None else "resolved"
        return f"{self.type} {self.artifact} ({state})"
