"""What the state-machine models share: race-safe transitions, their recorded history, and (for images
and charts) where they live in the registry."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin

from ..validators import SHA256_DIGEST_PATTERN, validate_positive_size, validate_sha256_digest


class StateTransition(models.Model):
    """One fired transition of a release, image or chart: from, to, when, by whom and why."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    subject = GenericForeignKey("content_type", "object_id")
    transition = models.CharField(max_length=64)
    source = models.CharField(max_length=32)
    target = models.CharField(max_length=32)
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="state_transitions"
    )
    task = models.CharField(max_length=200, blank=True, help_text="The Celery task that fired it, if any.")
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["content_type", "object_id", "at"])]

    def __str__(self) -> str:
        who = self.actor or self.task or "system"
        return f"{self.source} -> {self.target} ({self.transition}) by {who}"


class StalledQuerySetMixin:
    """``active()`` and ``stalled()`` for a stateful model's queryset (``active_states`` set by each)."""

    active_states: tuple[str, ...] = ()

    def active(self):
        return self.filter(state__in=self.active_states)

    def stalled(self, *, minutes: int | None = None):
        """Active rows with no transition or progress report for ``minutes`` (``STALLED_AFTER_MINUTES``)."""
        minutes = settings.STALLED_AFTER_MINUTES if minutes is None else minutes
        return self.active().filter(last_progress_at__lt=timezone.now() - timedelta(minutes=minutes))


class StatefulModel(ConcurrentTransitionMixin, models.Model):
    """A model whose ``state`` only moves through ``@transition`` methods.

    ``ConcurrentTransitionMixin`` turns every save into ``UPDATE ... WHERE state = <loaded state>``,
    so of two workers or admins firing a transition on the same row, exactly one wins and the
    other gets ``ConcurrentTransition``. Transitions are fired through
    ``releases.transitions.fire_transition``, which also records them as ``StateTransition`` rows.
    """

    state_transitions = GenericRelation(StateTransition)
    last_progress_at = models.DateTimeField(
        default=timezone.now,
        db_index=True,
        help_text="Last transition or progress report; the sweeper acts on active rows where it is old.",
    )
    stall_requeues = models.PositiveSmallIntegerField(
        default=0, help_text="Times the sweeper re-enqueued it since its last state change."
    )

    #: The states in which a worker is expected to move the row on (set by each model).
    active_states: tuple[str, ...] = ()

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.state in self.active_states

    @property
    def stalled_since(self) -> datetime | None:
        """When it last made progress, if it is active and has made none for ``STALLED_AFTER_MINUTES``."""
        threshold = timezone.now() - timedelta(minutes=settings.STALLED_AFTER_MINUTES)
        if self.is_active and self.last_progress_at and self.last_progress_at < threshold:
            return self.last_progress_at
        return None

    def full_clean(self, exclude=None, validate_unique=True, validate_constraints=True) -> None:
        # clean_fields() would assign ``state`` back, which the protected FSM field forbids; the
        # state is validated by the transitions and the database's CheckConstraint instead.
        exclude = {*(exclude or ()), "state"}
        super().full_clean(exclude=exclude, validate_unique=validate_unique, validate_constraints=validate_constraints)

    def guard_problems(self, transition_name: str) -> list[str]:
        """Why ``transition_name`` may not fire now (empty when it may). Overridden per model."""
        guard = getattr(self, f"guard_{transition_name}", None)
        return guard() if guard else []


class RegistryArtifact(StatefulModel):
    """What an image and a chart share: where they live in the registry and what their push produced.

    ``registry`` is declared by each subclass (their defaults differ); ``digest`` and ``size`` are
    empty until the push records them, and are then frozen with the published row, as are
    ``signed_with`` and ``signatures`` (recorded in the same transaction, when a key is configured).
    """

    digest = models.CharField(
        max_length=71,
        blank=True,
        validators=[validate_sha256_digest],
        help_text="The digest its push produced (image index or chart manifest).",
    )
    size = models.PositiveBigIntegerField(null=True, blank=True, validators=[validate_positive_size])
    progress = models.CharField(max_length=255, blank=True, help_text="What the pipeline is doing now.")
    signed_with = models.CharField(
        max_length=64,
        blank=True,
        help_text="Id of the key that signed it (hex SHA-256 of the public key); empty: published unsigned.",
    )
    signatures = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "Per signed manifest digest: what it is (index, platform or chart) and the digests of its "
            "cosign .sig (and .att) manifests as written at publication."
        ),
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def repository(self) -> str:
        """``<registry>/<name>``, e.g. ``ghcr.io/stianfro/threek8s/threek8s-backend``."""
        return f"{self.registry}/{self.name}"

    @property
    def registry_host(self) -> str:
        return self.repository.partition("/")[0]

    @property
    def repository_path(self) -> str:
        """The repository as the registry's API names it (without the host)."""
        return self.path_in_registry(self.registry, self.name)

    @staticmethod
    def path_in_registry(registry: str, name: str) -> str:
        """``repository_path`` of the row with these columns (for rows read as values)."""
        return f"{registry}/{name}".partition("/")[2]

    @property
    def is_signed(self) -> bool:
        return bool(self.signed_with)

    @property
    def pinned_uri(self) -> str:
        return f"{self.repository}@{self.digest}"

    @staticmethod
    def version_once(version_field: str, name: str, noun: str) -> models.UniqueConstraint:
        """One row per (registry, name, version): a version is published once."""
        return models.UniqueConstraint(
            fields=["registry", "name", version_field],
            name=name,
            violation_error_message=(
                f"this {noun} already exists; published versions are immutable, publish a new version instead"
            ),
        )

    @staticmethod
    def registry_constraints(prefix: str, states: type[models.TextChoices]) -> list[models.BaseConstraint]:
        """The checks every registry artifact table carries, named ``<prefix>_...``."""
        return [
            models.CheckConstraint(
                condition=Q(digest="") | Q(digest__regex=SHA256_DIGEST_PATTERN), name=f"{prefix}_digest_sha256"
            ),
            models.CheckConstraint(condition=Q(size__isnull=True) | Q(size__gt=0), name=f"{prefix}_size_positive"),
            models.CheckConstraint(condition=Q(state__in=states.values), name=f"{prefix}_state_known"),
        ]
