"""The state primitives: ``fire_transition`` is the only way a state changes.

Pipelines, tasks and the use cases in ``services`` all move rows through it; it imports only the
models, so anything may import it without a cycle.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from releases.observability.redaction import scrub

from .choices import ARTIFACT_TYPE_BY_COMPONENT, ArtifactType
from .models import DockerImage, HelmChart, ReleaseArtifact, ReleaseVersion, StatefulModel, StateTransition

Stateful = TypeVar("Stateful", bound=StatefulModel)


def public_text(text: str) -> str:
    """``text`` fit to be shown: no configured secret, no credentials in URLs, no worker paths."""
    return scrub(text, settings.SCRUBBED_SECRETS, settings.SCRUBBED_PATHS)


class TransitionRefused(Exception):
    """A transition that may not fire, with every reason why. The API answers it with 409."""

    def __init__(self, subject: StatefulModel, transition_name: str, reasons: list[str]) -> None:
        self.subject = subject
        self.transition_name = transition_name
        self.reasons = reasons
        super().__init__(f"{transition_name} refused for {subject}: {'; '.join(reasons)}")


def fire_transition(
    model: type[Stateful],
    pk: int,
    transition_name: str,
    *,
    actor: AbstractBaseUser | None = None,
    task: str = "",
    reason: str = "",
    changes: dict[str, Any] | None = None,
    **transition_kwargs: Any,
) -> Stateful:
    """Fire ``transition_name`` on the row ``pk`` of ``model`` and record it, race-safely.

    ``changes`` are field values saved together with the new state (e.g. the digest a push
    produced), validated by the model's ``full_clean()``. Refuses with ``TransitionRefused``:
    an unknown transition, one not allowed from the current state, one whose guard fails, an
    invalid resulting row, and the loser of two concurrent transitions on the same row (the
    conditional ``UPDATE ... WHERE state = <loaded>`` of ``ConcurrentTransitionMixin`` touches no
    row). Nothing is written when it refuses.
    """
    with transaction.atomic():
        subject = model.objects.get(pk=pk)
        method = getattr(subject, transition_name, None)
        if method is None or not hasattr(method, "_django_fsm"):
            raise TransitionRefused(subject, transition_name, [f"{transition_name} is not a transition"])
        source = subject.state
        if not can_proceed(method, check_conditions=False):
            allowed = sorted(t.name for t in subject.get_available_state_transitions())
            raise TransitionRefused(
                subject,
                transition_name,
                [
                    f"cannot {transition_name} from state {source}; "
                    f"from {source} you may {', '.join(allowed) or 'do nothing'}"
                ],
            )
        for field, value in (changes or {}).items():
            setattr(subject, field, value)
        # A state change is progress: the sweeper's clock and its re-enqueue budget start again.
        subject.last_progress_at = timezone.now()
        subject.stall_requeues = 0
        problems = subject.guard_problems(transition_name)
        if problems:
            raise TransitionRefused(subject, transition_name, problems)
        reason = public_text(reason)
        if "problems" in transition_kwargs:
            transition_kwargs["problems"] = [public_text(str(p)) for p in transition_kwargs["problems"] or []]
        if "reason" in inspect.signature(method).parameters:
            transition_kwargs.setdefault("reason", reason)
        method(**transition_kwargs)
        try:
            subject.full_clean()
        except ValidationError as error:
            raise TransitionRefused(subject, transition_name, error.messages) from error
        try:
            subject.save()
        except ConcurrentTransition:
            raise TransitionRefused(
                subject,
                transition_name,
                [f"another worker moved it out of {source} first; reload and try again"],
            ) from None
        StateTransition.objects.create(
            content_type=ContentType.objects.get_for_model(model),
            object_id=subject.pk,
            transition=transition_name,
            source=source,
            target=subject.state,
            actor=actor if actor is not None and actor.is_authenticated else None,
            task=task,
            reason=reason or transition_kwargs.get("reason", ""),
        )
        _touch_release_of(model, pk, subject.last_progress_at)
    return subject


def mark_progress(model: type[StatefulModel], pk: int, **fields: Any) -> None:
    """Record that work on row ``pk`` moved on (saving ``fields`` with it), and so did its active release:
    a release is as alive as the images and chart it waits for."""
    now = timezone.now()
    model.objects.filter(pk=pk).update(last_progress_at=now, **fields)
    _touch_release_of(model, pk, now)


# The field of an image or chart that names its release's version.
RELEASE_VERSION_FIELD = {DockerImage: "tag", HelmChart: "app_version"}


def _touch_release_of(model: type[StatefulModel], pk: int, at) -> None:
    field = RELEASE_VERSION_FIELD.get(model)
    if field is not None:
        versions = model.objects.filter(pk=pk).values(field)
        ReleaseVersion.objects.active().filter(version__in=versions).update(last_progress_at=at)


def record_artifact(release: ReleaseVersion, target: DockerImage | HelmChart) -> ReleaseArtifact:
    """Record an available image or an indexed chart as an artifact of its release (idempotent).

    An image's artifact type is that of its component in the release's layout; refuses
    (``ValueError``) an image the release did not plan."""
    if isinstance(target, HelmChart):
        kind, fields = ArtifactType.HELM_CHART, {"helm_chart": target}
    else:
        component = release.effective_layout().component_of(target.name)
        if component is None:
            raise ValueError(f"image {target.name} is not one of release {release}'s images {release.image_names()}")
        kind = ARTIFACT_TYPE_BY_COMPONENT[component]
        fields = {"docker_image": target}
    artifact = ReleaseArtifact.objects.filter(release=release, type=kind).first()
    if artifact is not None:
        return artifact
    artifact = ReleaseArtifact(
        release=release, type=kind, uri=target.pinned_uri, checksum=target.digest, size=target.size, **fields
    )
    artifact.full_clean()
    artifact.save()
    return artifact
