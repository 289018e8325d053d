from __future__ import annotations

from django.db import models


class GitHubDelivery(models.Model):
    """A received GitHub webhook delivery, recorded once by its ``X-GitHub-Delivery`` id so a
    redelivered event changes nothing."""

    delivery_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=50)
    action = models.CharField(max_length=50, blank=True)
    received = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=255, blank=True)
    release = models.ForeignKey(
        "releases.ReleaseVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )

    class Meta:
        ordering = ["-received"]
        verbose_name_plural = "GitHub deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"
