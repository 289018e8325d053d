"""Use cases of the release domain: the one way every entry point (API, webhook, admin, management
commands) creates, publishes, retries or fails work, and the only module that enqueues it.

Each use case opens a transaction, fires transitions through ``transitions.fire_transition`` and
enqueues the Celery task with ``transaction.on_commit``, so a worker never sees a row its
transaction has not committed yet.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from .changelog import pr_number_from_subject
from .choices import ChartState, EnvironmentScope, ImageState, ReleaseState
from .imagebuild.errors import SourceError
from .imagebuild.source import commit_subject, resolve_tag
from .layout import LAYOUT_FILE, LayoutInvalid, ReleaseLayout
from .models import AuditRun, DockerImage, EnvironmentVariable, HelmChart, ReleaseVersion, StatefulModel
from .pipelines.audit import AuditAlreadyRunning, run_audit
from .pipelines.source import read_layout
from .tasks import audit_published_tags, build_image_signature, orchestrate_release, publish_chart_signature
from .transitions import TransitionRefused, fire_transition

__all__ = [
    "PERMISSION_TO",
    "AuditAlreadyRunning",
    "PlanRefused",
    "ReleaseExists",
    "TagUnresolved",
    "TransitionRefused",
    "audit_now",
    "commit_of_tag",
    "create_release",
    "fail_work",
    "may",
    "plan_release",
    "publish_release",
    "read_release_layout",
    "retry_image",
    "retry_chart",
    "retry_release",
    "start_audit",
]

logger = logging.getLogger(__name__)

# Who may run which use case: the Django model permission a person (a session in the API or the
# admin) needs. API tokens carry a scope instead (a write token may run all of them). Retrying or
# failing an image or a chart by hand needs the change permission of that model.
PERMISSION_TO = {
    "create_release": "releases.add_releaseversion",
    "publish_release": "releases.change_releaseversion",
    "retry_release": "releases.change_releaseversion",
    "start_audit": "releases.add_auditrun",
    "withdraw_release": "releases.withdraw_releaseversion",
    "restore_release": "releases.withdraw_releaseversion",
}


def may(user: object, use_case: str) -> bool:
    """Whether ``user`` (a person) holds the permission ``use_case`` needs; unknown use cases are refused."""
    permission = PERMISSION_TO.get(use_case)
    has_perm = getattr(user, "has_perm", None)
    return permission is not None and callable(has_perm) and bool(has_perm(permission))


# Who fires what: the transition each model's "fail" button fires.
FAIL_TRANSITION = {ReleaseVersion: "fail", DockerImage: "fail", HelmChart: "reject"}


class ReleaseExists(Exception):
    """A release of this version exists already: Release Please versions are created once."""

    def __init__(self, version: str) -> None:
        self.version = version
        super().__init__(f"release {version} already exists; Release Please versions are created once")


class PlanRefused(TransitionRefused):
    """The release's ``.release-registry.yaml`` cannot be used (or read): nothing was planned. The
    reasons list every problem; a draft release has failed with them (``refuse_plan``)."""


class TagUnresolved(Exception):
    """A release tag could not be resolved to a commit in the source repository."""


def create_release(
    *,
    version: str,
    commit_sha: str,
    pr_number: int | None = None,
    changelog: str = "",
    release_notes: str = "",
    release_date: datetime | None = None,
    source_repository: str | None = None,
) -> ReleaseVersion:
    """Create a draft release after the model's own checks.

    Without ``pr_number``, the release PR is read from the release commit's subject (Release
    Please's merge commit ends with ``(#43)``) in ``source_repository`` (a local clone or a URL;
    default ``SOURCE_REPOSITORY_URL``). That read fails soft: a repository that cannot be read
    leaves ``pr_number`` empty and logs why.

    Refuses with ``ValidationError`` (every field's problems at once) an invalid release, and with
    ``ReleaseExists`` a version that exists already (also when another request creates it first).
    """
    fields: dict[str, Any] = {
        "version": version,
        "commit_sha": commit_sha,
        "pr_number": pr_number,
        "changelog": changelog,
        "release_notes": release_notes,
    }
    if release_date is not None:
        fields["release_date"] = release_date
    release = ReleaseVersion(**fields)
    release.full_clean(validate_unique=False)
    if ReleaseVersion.objects.filter(version=version).exists():
        raise ReleaseExists(version)
    if pr_number is None:
        release.pr_number = release_pr_of_commit(version, release.commit_sha, source_repository)
    try:
        with transaction.atomic():
            release.save()
    except IntegrityError:
        raise ReleaseExists(version) from None
    return release


def release_pr_of_commit(version: str, commit_sha: str, source_repository: str | None = None) -> int | None:
    """The pull request the release commit's subject names, or ``None`` (logged) when it names none
    or the repository cannot be read. Never raises: a missing PR number must not stop a release."""
    repository = source_repository or settings.SOURCE_REPOSITORY_URL
    if not repository:
        logger.info("release %s: pr_number not read from its commit: SOURCE_REPOSITORY_URL is not set", version)
        return None
    try:
        subject = commit_subject(repository, commit_sha, timeout=settings.SOURCE_READ_TIMEOUT)
    except SourceError as error:
        logger.warning("release %s: pr_number not read from commit %s: %s", version, commit_sha[:12], error)
        return None
    number = pr_number_from_subject(subject)
    if number is None:
        logger.info("release %s: commit %s names no pull request (%r)", version, commit_sha[:12], subject[:200])
    return number


def commit_of_tag(tag: str) -> str:
    """The commit the release tag ``tag`` names in ``SOURCE_REPOSITORY_URL`` (annotated tags peeled).

    The tag is the source of truth when a GitHub release names a branch instead of a commit.
    Refuses (``TagUnresolved``, saying what to do) when the repository is not configured or cannot
    be read, or has no such tag.
    """
    if not settings.SOURCE_REPOSITORY_URL:
        raise TagUnresolved(
            f"tag {tag} cannot be resolved: SOURCE_REPOSITORY_URL is not set; set it to the repository "
            "Release Please tags, or create the release with the API (POST /api/v1/releases/) giving commit_sha"
        )
    try:
        return resolve_tag(settings.SOURCE_REPOSITORY_URL, tag, timeout=settings.SOURCE_READ_TIMEOUT)
    except SourceError as error:
        raise TagUnresolved(
            f"tag {tag} cannot be resolved to a commit: {error}; or create the release with the API "
            "(POST /api/v1/releases/) giving commit_sha"
        ) from None


def plan_release(release_pk: int, *, layout: ReleaseLayout | None = None) -> ReleaseVersion:
    """Create the rows a release publishes: its two images and the chart, at the release's version.

    The first plan stores the release's layout (``layout``, read from its commit by
    ``read_release_layout``; the defaults without one) and every later step follows the stored one:
    image names, build contexts, Dockerfiles and build args, the chart's path. Images are linked to
    the environment variables of their component's scope (and ``both``), the chart to all of them.
    Idempotent: rows that exist are kept as they are (a retried plan never resets pushed work) and a
    stored layout is never replaced, so later changes of names or defaults never touch planned or
    published rows. Refuses (``ValidationError``) a version that is not valid semver.
    """
    with transaction.atomic():
        release = ReleaseVersion.objects.select_for_update().get(pk=release_pk)
        release.full_clean(exclude=["state"])
        if not release.layout:
            release.layout = (layout or release.effective_layout()).to_json()
            release.save(update_fields=["layout"])
        variables = list(EnvironmentVariable.objects.all())
        for planned in release.effective_layout().images:
            image, created = DockerImage.objects.get_or_create(
                name=planned.name,
                tag=release.version,
                defaults={
                    "component": planned.component,
                    "context_path": planned.context,
                    "dockerfile_path": planned.dockerfile,
                    "build_args": dict(planned.build_args),
                },
            )
            if created:
                image.full_clean()
            if not image.tag_is_immutable:
                scopes = {planned.component, EnvironmentScope.BOTH}
                image.environment_variables.set([v for v in variables if v.scope in scopes])
        chart = release.charts().first()
        if chart is None:
            chart = HelmChart(name=settings.CHART_NAME, chart_version=release.version, app_version=release.version)
            chart.full_clean()
            chart.save()
        if chart.state != ChartState.INDEXED:
            chart.environment_variables.set(variables)
    return release


def read_release_layout(release: ReleaseVersion, *, actor: AbstractBaseUser | None = None) -> ReleaseLayout | None:
    """The layout to plan ``release`` with, read from its commit; ``None`` when it was planned before
    (its stored layout is kept). Runs git, so call it outside a transaction.

    Refuses (``PlanRefused``) a layout that cannot be used, listing every problem; a draft release
    fails with them (``draft -> failed``), before anything is built.
    """
    if release.layout or release.images().exists():
        return None
    try:
        return read_layout(release)
    except LayoutInvalid as invalid:
        if release.state == ReleaseState.DRAFT:
            fire_transition(
                ReleaseVersion,
                release.pk,
                "refuse_plan",
                actor=_person(actor),
                task=_client(actor),
                reason="; ".join(invalid.problems),
                artifact=LAYOUT_FILE,
            )
        raise PlanRefused(release, "plan", invalid.problems) from None


def publish_release(release_pk: int, *, actor: AbstractBaseUser | None = None) -> ReleaseVersion:
    """Plan a draft release's images and chart and start publishing it (draft -> pending).

    The orchestration is enqueued only once the transaction commits. Refuses (``TransitionRefused``)
    a release that is not a draft, or whose plan is incomplete; (``PlanRefused``) one whose
    ``.release-registry.yaml`` cannot be used, which then has failed with every problem listed.
    """
    release = ReleaseVersion.objects.get(pk=release_pk)
    layout = read_release_layout(release, actor=actor) if release.state == ReleaseState.DRAFT else None
    with transaction.atomic():
        plan_release(release_pk, layout=layout)
        release = fire_transition(
            ReleaseVersion, release_pk, "submit", actor=_person(actor), task=_client(actor), reason="publish requested"
        )
        transaction.on_commit(lambda: orchestrate_release.delay(release_pk))
    return release


def retry_release(release_pk: int, *, actor: AbstractBaseUser | None = None) -> ReleaseVersion:
    """Resume a failed release (failed -> pending): failed images and an invalid chart are queued
    again; images already available are kept (never rebuilt). A release that failed at planning is
    planned now. Refuses a release that has not failed, and (``PlanRefused``) one whose
    ``.release-registry.yaml`` still cannot be used."""
    release = ReleaseVersion.objects.get(pk=release_pk)
    layout = read_release_layout(release, actor=actor) if release.state == ReleaseState.FAILED else None
    with transaction.atomic():
        release = fire_transition(
            ReleaseVersion, release_pk, "retry", actor=_person(actor), task=_client(actor), reason="retry requested"
        )
        release = plan_release(release_pk, layout=layout)
        for image in release.images().filter(state=ImageState.FAILED):
            fire_transition(DockerImage, image.pk, "retry", actor=_person(actor), reason=f"release {release} retried")
        for chart in release.charts().filter(state=ChartState.INVALID):
            fire_transition(HelmChart, chart.pk, "retry", actor=_person(actor), reason=f"release {release} retried")
        transaction.on_commit(lambda: orchestrate_release.delay(release_pk))
    return release


def retry_image(image_pk: int, *, actor: AbstractBaseUser | None = None) -> DockerImage:
    """Queue a failed image again (failed -> queued) and build it; what was pushed is reused.
    Refuses an image that has not failed."""
    with transaction.atomic():
        image = fire_transition(
            DockerImage, image_pk, "retry", actor=_person(actor), task=_client(actor), reason="retry requested"
        )
        transaction.on_commit(lambda: build_image_signature(image_pk).delay())
    return image


def retry_chart(chart_pk: int, *, actor: AbstractBaseUser | None = None) -> HelmChart:
    """Validate an invalid chart again (invalid -> validating) and publish it. Refuses a chart that
    is not invalid."""
    with transaction.atomic():
        chart = fire_transition(
            HelmChart, chart_pk, "retry", actor=_person(actor), task=_client(actor), reason="retry requested"
        )
        transaction.on_commit(lambda: publish_chart_signature(chart_pk).delay())
    return chart


def fail_work(
    model: type[StatefulModel], pk: int, *, actor: AbstractBaseUser | None = None, reason: str = ""
) -> StatefulModel:
    """Stop active work by hand: the release, image or chart ends failed (invalid for a chart) with
    the reason and who did it. Refuses work that is not active."""
    why = reason or f"stopped by {actor or 'an operator'}"
    kwargs: dict[str, Any] = {"problems": [why]} if model is HelmChart else {}
    return fire_transition(
        model, pk, FAIL_TRANSITION[model], actor=_person(actor), task=_client(actor), reason=why, **kwargs
    )


def audit_now(*, triggered_by: str, on_progress: Callable[[int, int], None] | None = None) -> AuditRun:
    """Run a tag-immutability audit in this process and return it (the ``audit_tags`` command).
    Refuses (``AuditAlreadyRunning``) while another audit runs."""
    return run_audit(triggered_by=triggered_by, on_progress=on_progress)


def start_audit(*, triggered_by: str) -> str:
    """Enqueue a tag-immutability audit once the transaction commits; returns the task id it will
    have. A running audit makes it skip."""
    task_id = str(uuid.uuid4())
    transaction.on_commit(
        lambda: audit_published_tags.apply_async(kwargs={"triggered_by": triggered_by}, task_id=task_id)
    )
    return task_id


def _person(actor: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor if getattr(actor, "pk", None) is not None else None


def _client(actor: object) -> str:
    """API-token clients are not users; they are recorded by name in the transition's task field."""
    return "" if actor is None or getattr(actor, "pk", None) is not None else str(actor)
