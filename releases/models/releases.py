from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django_fsm import FSMField, transition

from ..changelog import stored_forms
from ..choices import (
    COMPONENT_BY_ARTIFACT_TYPE,
    DOCKER_ARTIFACT_TYPES,
    ArtifactType,
    ChartState,
    ImageState,
    ReleaseState,
    WithdrawalAction,
)
from ..layout import ReleaseLayout
from ..validators import (
    GIT_SHA_PATTERN,
    SHA256_DIGEST_PATTERN,
    parse_semver,
    validate_artifact_uri,
    validate_changelog_size,
    validate_commit_sha,
    validate_positive_size,
    validate_semver,
    validate_sha256_digest,
)
from ..versions import MAX_VERSION_LENGTH, SORT_KEY_MAX_LENGTH, column_sort_key
from .base import StalledQuerySetMixin, StatefulModel
from .charts import HelmChart
from .images import DockerImage, default_release_layout

ACTIVE_RELEASE_STATES = (ReleaseState.PENDING, ReleaseState.BUILDING, ReleaseState.PUBLISHING)


class ReleaseVersionQuerySet(StalledQuerySetMixin, models.QuerySet):
    active_states = ACTIVE_RELEASE_STATES

    def published(self) -> ReleaseVersionQuerySet:
        return self.filter(state=ReleaseState.PUBLISHED)

    # Withdrawal (``ReleaseWithdrawal``): read through the reverse relation, which
    # ``models.withdrawals`` declares (it imports this module).
    def with_withdrawal(self) -> ReleaseVersionQuerySet:
        """Annotate each release with its newest withdrawal record, in the same query.

        ``withdrawal_action`` is ``withdraw`` while the release is withdrawn (``restore`` once
        restored, ``None`` if never withdrawn); ``withdrawal_reason``, ``withdrawal_at`` and
        ``withdrawal_actor`` say why, when and by whom.
        """
        records = self.model._meta.get_field("withdrawals").related_model.objects
        newest = records.filter(release=OuterRef("pk")).order_by("-sequence")
        return self.annotate(
            withdrawal_action=Subquery(newest.values("action")[:1]),
            withdrawal_reason=Subquery(newest.values("reason")[:1]),
            withdrawal_at=Subquery(newest.values("created")[:1]),
            withdrawal_actor=Subquery(newest.values("actor")[:1]),
        )

    def withdrawn(self) -> ReleaseVersionQuerySet:
        return self.with_withdrawal().filter(withdrawal_action=WithdrawalAction.WITHDRAW)

    def not_withdrawn(self) -> ReleaseVersionQuerySet:
        return self.with_withdrawal().filter(
            Q(withdrawal_action__isnull=True) | ~Q(withdrawal_action=WithdrawalAction.WITHDRAW)
        )


class ReleaseVersion(StatefulModel):
    """A release cut by Release Please, and its way to ``published``.

    State machine (``state``)::

        draft -> pending -> building -> publishing -> published
          |         |           |            |
          +---------+-----------+------------+--> failed --retry--> pending

    ``draft -> failed`` is ``refuse_plan``: the release's ``.release-registry.yaml`` cannot be
    used, so nothing is planned or built (``retry`` reads it again and plans).

    Refuses: a version that is not semver; a commit SHA that is not a full git hash; leaving
    ``draft`` before both images and the chart of the version are planned; ``publishing`` before
    both images are available; ``published`` without at least one artifact, each with URI,
    checksum and size, or before the chart is indexed; a changelog or release notes over
    ``CHANGELOG_MAX_BYTES``.

    The notes are parsed and rendered when written (``save()``), into ``parsed_changelog`` and
    ``changelog_html``: readers, anonymous ones included, are served those and never make the
    service parse markdown.
    """

    version = models.CharField(max_length=MAX_VERSION_LENGTH, unique=True, validators=[validate_semver])
    version_order = models.CharField(
        max_length=SORT_KEY_MAX_LENGTH,
        default="",
        editable=False,
        db_index=True,
        help_text="Sorts by semver whatever the collation (releases.versions.column_sort_key).",
    )
    release_date = models.DateTimeField(default=timezone.now)
    changelog = models.TextField(
        blank=True, validators=[validate_changelog_size], help_text="Markdown, as Release Please wrote it."
    )
    commit_sha = models.CharField(max_length=64, validators=[validate_commit_sha])
    pr_number = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1, "pr_number must be a positive pull request number, such as 42")],
    )
    release_notes = models.TextField(blank=True, validators=[validate_changelog_size])
    parsed_changelog = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="The notes' component and sections, parsed when the notes were written.",
    )
    changelog_html = models.TextField(
        blank=True, editable=False, help_text="The notes as sanitized HTML, rendered when they were written."
    )
    state = FSMField(default=ReleaseState.DRAFT, choices=ReleaseState.choices, protected=True)
    layout = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="The effective .release-registry.yaml (defaults filled in) the release was planned with.",
    )
    failure_reason = models.TextField(blank=True)
    failed_artifact = models.CharField(max_length=255, blank=True, help_text="Which artifact broke it.")
    published_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = ReleaseVersionQuerySet.as_manager()
    active_states = ACTIVE_RELEASE_STATES

    class Meta:
        ordering = ["-release_date", "-pk"]
        # The admin's overview reads the newest releases (and, by version, their images and chart).
        indexes = [models.Index(fields=["-release_date", "-id"], name="release_recent_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(commit_sha__regex=GIT_SHA_PATTERN), name="release_commit_sha_full"),
            models.CheckConstraint(
                condition=Q(pr_number__isnull=True) | Q(pr_number__gt=0), name="release_pr_number_positive"
            ),
            models.CheckConstraint(condition=Q(state__in=ReleaseState.values), name="release_state_known"),
        ]

    def __str__(self) -> str:
        return self.version

    @classmethod
    def from_db(cls, db, field_names, values):
        release = super().from_db(db, field_names, values)
        if {"changelog", "release_notes"} <= release.__dict__.keys():
            release._rendered_markdown = release.notes_markdown
        return release

    def save(self, *args, **kwargs) -> None:
        self.version_order = column_sort_key(self.version)
        update_fields = kwargs.get("update_fields")
        notes_written = update_fields is None or not {"changelog", "release_notes"}.isdisjoint(update_fields)
        if notes_written and getattr(self, "_rendered_markdown", None) != self.notes_markdown:
            self.render_notes()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "parsed_changelog", "changelog_html"}
        super().save(*args, **kwargs)

    @property
    def notes_markdown(self) -> str:
        """The markdown a reader is served: the changelog, else the release notes."""
        return self.changelog or self.release_notes

    def render_notes(self) -> None:
        """Parse and render the notes into their stored forms (done by ``save()`` when they change)."""
        self.parsed_changelog, self.changelog_html = stored_forms(self.notes_markdown)
        self._rendered_markdown = self.notes_markdown

    @property
    def semver(self):
        return parse_semver(self.version)

    def effective_layout(self) -> ReleaseLayout:
        """What the release builds and deploys: its stored layout, or the defaults before it was planned."""
        return ReleaseLayout.from_json(self.layout, defaults=default_release_layout())

    def image_names(self) -> dict[str, str]:
        """Component -> image name of this release."""
        return self.effective_layout().names()

    def current_withdrawal(self):
        """The withdrawal in force (a ``ReleaseWithdrawal``), or ``None`` when the release is not withdrawn."""
        newest = self.withdrawals.order_by("-sequence").first() if self.pk else None
        return newest if newest is not None and newest.withdraws else None

    @property
    def is_withdrawn(self) -> bool:
        return self.current_withdrawal() is not None

    def images(self) -> models.QuerySet:
        return DockerImage.objects.filter(tag=self.version, name__in=self.image_names().values())

    def charts(self) -> models.QuerySet:
        return HelmChart.objects.filter(app_version=self.version)

    # Validation ---------------------------------------------------------------------------
    def clean(self) -> None:
        if self.state == ReleaseState.PUBLISHED and self.pk:
            problems = self.artifact_problems()
            if problems:
                raise ValidationError({"state": problems})

    def artifact_problems(self) -> list[str]:
        artifacts = list(self.artifacts.all()) if self.pk else []
        if not artifacts:
            return [f"release {self.version} has no artifacts; a release is published with at least one"]
        problems = []
        for artifact in artifacts:
            missing = [f for f in ("uri", "checksum", "size") if not getattr(artifact, f)]
            if missing:
                problems.append(f"artifact {artifact.type} lacks {', '.join(missing)}")
        return problems

    # State machine ------------------------------------------------------------------------
    @transition(
        field=state,
        source=ReleaseState.DRAFT,
        target=ReleaseState.PENDING,
        # No ``conditions``: the admin offers Publish on every draft, and publishing plans the
        # release before ``fire_transition`` checks ``guard_submit``.
        custom={"admin": True, "label": "Publish", "help_text": "Plan and start publishing this release."},
    )
    def submit(self) -> None:
        self.failure_reason = ""

    def guard_submit(self) -> list[str]:
        problems = []
        if ReleaseVersion.objects.published().filter(version=self.version).exclude(pk=self.pk).exists():
            problems.append(f"version {self.version} is already published")
        planned = set(self.images().values_list("name", flat=True))
        for name in self.image_names().values():
            if name not in planned:
                problems.append(f"image {name}:{self.version} is not planned")
        if not self.charts().exists():
            problems.append(f"no Helm chart with appVersion {self.version} is planned")
        return problems

    @transition(field=state, source=ReleaseState.DRAFT, target=ReleaseState.FAILED)
    def refuse_plan(self, reason: str = "", artifact: str = "") -> None:
        self.failure_reason = reason
        self.failed_artifact = artifact

    @transition(field=state, source=ReleaseState.PENDING, target=ReleaseState.BUILDING)
    def start_build(self) -> None:
        pass

    @transition(
        field=state,
        source=ReleaseState.BUILDING,
        target=ReleaseState.PUBLISHING,
        conditions=[lambda release: not release.guard_start_publishing()],
    )
    def start_publishing(self) -> None:
        pass

    def guard_start_publishing(self) -> list[str]:
        states = dict(self.images().values_list("name", "state"))
        return [
            f"image {name}:{self.version} is {states.get(name, 'missing')}, not available"
            for name in self.image_names().values()
            if states.get(name) != ImageState.AVAILABLE
        ]

    @transition(
        field=state,
        source=ReleaseState.PUBLISHING,
        target=ReleaseState.PUBLISHED,
        conditions=[lambda release: not release.guard_mark_published()],
    )
    def mark_published(self) -> None:
        self.published_at = timezone.now()

    def guard_mark_published(self) -> list[str]:
        problems = self.artifact_problems()
        if not self.charts().filter(state=ChartState.INDEXED).exists():
            problems.append(f"the Helm chart for {self.version} is not indexed yet")
        return problems

    @transition(
        field=state, source=ACTIVE_RELEASE_STATES, target=ReleaseState.FAILED, custom={"admin": True, "label": "Fail"}
    )
    def fail(self, reason: str = "", artifact: str = "") -> None:
        self.failure_reason = reason
        self.failed_artifact = artifact

    @transition(
        field=state,
        source=ReleaseState.FAILED,
        target=ReleaseState.PENDING,
        custom={"admin": True, "label": "Retry", "help_text": "Resume; what was already pushed is reused."},
    )
    def retry(self) -> None:
        self.failure_reason = ""
        self.failed_artifact = ""


class ReleaseArtifact(models.Model):
    """One published artifact of a release: an image or the chart, pinned by digest.

    Refuses: a docker type that does not point at a ``DockerImage`` (or also at a chart), a
    ``helm-chart`` that does not point at a ``HelmChart``; a checksum that is not sha256 or differs
    from the artifact's digest; a URI outside ``REGISTRY_NAMESPACE`` or not pinned to that
    digest; a non-positive size; an artifact whose version differs from the release's.
    """

    release = models.ForeignKey(ReleaseVersion, on_delete=models.CASCADE, related_name="artifacts")
    type = models.CharField(max_length=32, choices=ArtifactType.choices)
    uri = models.CharField(max_length=500, validators=[validate_artifact_uri])
    checksum = models.CharField(max_length=71, validators=[validate_sha256_digest])
    size = models.PositiveBigIntegerField(validators=[validate_positive_size])
    docker_image = models.ForeignKey(
        DockerImage, null=True, blank=True, on_delete=models.PROTECT, related_name="artifacts"
    )
    helm_chart = models.ForeignKey(HelmChart, null=True, blank=True, on_delete=models.PROTECT, related_name="artifacts")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["release", "type"]
        constraints = [
            models.UniqueConstraint(fields=["release", "type"], name="artifact_type_once_per_release"),
            models.CheckConstraint(condition=Q(checksum__regex=SHA256_DIGEST_PATTERN), name="artifact_checksum_sha256"),
            models.CheckConstraint(condition=Q(size__gt=0), name="artifact_size_positive"),
            models.CheckConstraint(condition=~Q(uri=""), name="artifact_uri_required"),
            models.CheckConstraint(
                condition=(
                    Q(type__in=DOCKER_ARTIFACT_TYPES, docker_image__isnull=False, helm_chart__isnull=True)
                    | Q(type=ArtifactType.HELM_CHART, helm_chart__isnull=False, docker_image__isnull=True)
                ),
                name="artifact_type_matches_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.uri}"

    @property
    def target(self) -> DockerImage | HelmChart | None:
        return self.docker_image if self.type in DOCKER_ARTIFACT_TYPES else self.helm_chart

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.type in DOCKER_ARTIFACT_TYPES:
            if self.docker_image_id is None:
                errors.setdefault("docker_image", []).append(f"a {self.type} artifact must point at a Docker image")
            if self.helm_chart_id is not None:
                errors.setdefault("helm_chart", []).append(f"a {self.type} artifact cannot point at a Helm chart")
        elif self.type == ArtifactType.HELM_CHART:
            if self.helm_chart_id is None:
                errors.setdefault("helm_chart", []).append("a helm-chart artifact must point at a Helm chart")
            if self.docker_image_id is not None:
                errors.setdefault("docker_image", []).append("a helm-chart artifact cannot point at a Docker image")
        if errors:
            raise ValidationError(errors)
        target = self.target
        if target is None:
            return
        if isinstance(target, DockerImage):
            names = self.release.image_names() if self.release_id else default_release_layout().names()
            expected_name = names[COMPONENT_BY_ARTIFACT_TYPE[self.type]]
            if target.name != expected_name:
                errors.setdefault("docker_image", []).append(
                    f"a {self.type} artifact points at {expected_name}, not {target.name}"
                )
            if target.state != ImageState.AVAILABLE:
                errors.setdefault("docker_image", []).append(
                    f"image {target.reference} is {target.state}; only available images are release artifacts"
                )
            version = target.tag
        else:
            if target.state != ChartState.INDEXED:
                errors.setdefault("helm_chart", []).append(
                    f"chart {target} is {target.state}; only indexed charts are release artifacts"
                )
            version = target.app_version
        if self.release_id and version != self.release.version:
            errors.setdefault("release", []).append(
                f"artifact version {version} differs from release {self.release.version}; "
                "all artifacts of a release share its version"
            )
        if target.digest and self.checksum and self.checksum != target.digest:
            errors.setdefault("checksum", []).append(
                f"checksum {self.checksum} differs from the artifact's digest {target.digest}"
            )
        if target.digest and self.uri and self.uri != target.pinned_uri:
            errors.setdefault("uri", []).append(f"the URI must be pinned by digest: {target.pinned_uri}")
        if errors:
            raise ValidationError(errors)
