"""What the three state-machine models share: race-safe transitions and their recorded history."""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django_fsm import ConcurrentTransitionMixin


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


class StatefulModel(ConcurrentTransitionMixin, models.Model):
    """A model whose ``state`` only moves through ``@transition`` methods.

    ``ConcurrentTransitionMixin`` turns every save into ``UPDATE ... WHERE state = <loaded state>``,
    so of two workers or admins firing a transition on the same row, exactly one wins and the
    other gets ``ConcurrentTransition``. Transitions are fired through
    ``releases.services.fire_transition``, which also records them as ``StateTransition`` rows.
    """

    state_transitions = GenericRelation(StateTransition)

    class Meta:
        abstract = True

    def full_clean(self, exclude=None, validate_unique=True, validate_constraints=True) -> None:
        # clean_fields() would assign ``state`` back, which the protected FSM field forbids; the
        # state is validated by the transitions and the database's CheckConstraint instead.
        exclude = {*(exclude or ()), "state"}
        super().full_clean(exclude=exclude, validate_unique=validate_unique, validate_constraints=validate_constraints)

    def guard_problems(self, transition_name: str) -> list[str]:
        """Why ``transition_name`` may not fire now (empty when it may). Overridden per model."""
        guard = getattr(self, f"guard_{transition_name}", None)
        return guard() if guard else []
