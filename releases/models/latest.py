from __future__ import annotations

from django.db import models

from ..choices import LatestTagState


class LatestTag(models.Model):
    """Where one image repository's OCI ``latest`` tag was last put by a withdrawal or a restore,
    and whether that worked: the named state a failed move ends in (``releases.pipelines.latest``).

    One row per repository (``registry``/``name``). Written only by the task that moves ``latest``
    (``align_latest_tags``); publishing a new version moves ``latest`` as before (``move_latest``)
    and the tag audit keeps checking it against the newest published, not withdrawn, version.
    """

    registry = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=LatestTagState.choices, default=LatestTagState.MOVING)
    version = models.CharField(max_length=128, blank=True, help_text="The version latest points at (when current).")
    digest = models.CharField(max_length=71, blank=True)
    reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Registry attempts of the last move.")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["registry", "name"]
        constraints = [
            models.UniqueConstraint(fields=["registry", "name"], name="latest_tag_once_per_repository"),
            models.CheckConstraint(condition=models.Q(state__in=LatestTagState.values), name="latest_tag_state_known"),
        ]

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}:latest ({self.state})"

    @classmethod
    def record(
        cls,
        registry: str,
        name: str,
        state: str,
        *,
        version: str = "",
        digest: str = "",
        reason: str = "",
        attempts: int = 0,
    ) -> LatestTag:
        row, _ = cls.objects.update_or_create(
            registry=registry,
            name=name,
            defaults={"state": state, "version": version, "digest": digest, "reason": reason, "attempts": attempts},
        )
        return row
