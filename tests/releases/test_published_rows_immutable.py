"""Published rows, and everything hanging from them, are immutable in the database itself.

Every rule of ``releases.database.triggers`` is proven with writes that bypass the models
(``QuerySet.update()``, raw ``DELETE``, inserts of children) on two real databases: the suite's
(PostgreSQL in CI) and a second, in-memory SQLite database migrated next to it, because the
triggers are generated per vendor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from releases.choices import ArtifactType, ChartState, ImageState, ReleaseState
from releases.database.triggers import (
    TABLES,
    TABLES_0002,
    TABLES_0013,
    TABLES_0016,
    TABLES_0017,
    TABLES_0020,
    ensure_triggers,
)
from releases.models import (
    ChartDependency,
    DockerImage,
    EnvironmentVariable,
    HelmChart,
    ReleaseArtifact,
    ReleaseVersion,
)
from tests.fixtures.factories import COMMIT, digest_of

# A second database for the SQLite flavour of the triggers; pytest-django creates and migrates it.
SQLITE = "immutability_sqlite"
connections.settings[SQLITE] = connections.configure_settings(
    {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
)["default"]

pytestmark = pytest.mark.django_db(databases=["default", SQLITE])

REFUSAL = "publish a new version instead"
LATER = datetime(2030, 1, 1, tzinfo=UTC)
RULES = {rule.table: rule for rule in TABLES}

# What may still change on a published row (see the module docstring of releases.database.triggers).
BOOKKEEPING = {
    "releases_releaseversion": {
        "version_order": "zz-resorted",
        "updated": LATER,
        "last_progress_at": LATER,
        "stall_requeues": 1,
    },
    "releases_releaseartifact": {},
    "releases_helmchart": {
        "progress": "indexed; re-read",
        "updated": LATER,
        "version_order": "zz-resorted",
        "last_progress_at": LATER,
        "stall_requeues": 1,
    },
    "releases_chartdependency": {},
    "releases_helmchart_environment_variables": {},
    "releases_dockerimage": {
        "progress": "available; latest moved",
        "updated": LATER,
        "tag_order": "zz-resorted",
        "last_progress_at": LATER,
        "stall_requeues": 1,
    },
    "releases_dockerimage_environment_variables": {},
}


@dataclass
class World:
    """A release with its images, chart, dependency and env-var links; published or not."""

    alias: str
    release: ReleaseVersion
    frontend: DockerImage
    backend: DockerImage
    chart: HelmChart
    artifact: ReleaseArtifact
    dependency: ChartDependency
    image_link: Any
    chart_link: Any
    other_release: ReleaseVersion
    other_image: DockerImage
    other_chart: HelmChart
    other_variable: EnvironmentVariable

    def row(self, table: str) -> Any:
        return {
            "releases_releaseversion": self.release,
            "releases_releaseartifact": self.artifact,
            "releases_helmchart": self.chart,
            "releases_chartdependency": self.dependency,
            "releases_helmchart_environment_variables": self.chart_link,
            "releases_dockerimage": self.frontend,
            "releases_dockerimage_environment_variables": self.image_link,
        }[table]


def build_world(alias: str, *, published: bool) -> World:
    def image(name: str, tag: str, state: str = ImageState.PUSHING) -> DockerImage:
        return DockerImage.objects.using(alias).create(
            name=name, tag=tag, state=state, digest=digest_of(f"{name}:{tag}"), size=1234, build_date=timezone.now()
        )

    variable = EnvironmentVariable.objects.using(alias).create(name="API_URL", default_value="/api", description="d")
    other_variable = EnvironmentVariable.objects.using(alias).create(name="NODE_ENV", required=True, description="d")
    release = ReleaseVersion.objects.using(alias).create(version="1.0.0", commit_sha=COMMIT)
    frontend = image("threek8s-frontend", "1.0.0")
    backend = image("threek8s-backend", "1.0.0")
    chart = HelmChart.objects.using(alias).create(
        chart_version="1.0.0",
        app_version="1.0.0",
        state=ChartState.UPLOADING,
        digest=digest_of("chart"),
        package=b"tgz",
        package_digest=digest_of("tgz"),
    )
    artifact = ReleaseArtifact.objects.using(alias).create(
        release=release,
        type=ArtifactType.DOCKER_FRONTEND,
        uri=frontend.pinned_uri,
        checksum=frontend.digest,
        size=1234,
        docker_image=frontend,
    )
    dependency = ChartDependency.objects.using(alias).create(
        chart=chart, name="redis", version="^18.0.0", repository="https://charts.bitnami.com/bitnami"
    )
    frontend.environment_variables.add(variable)
    chart.environment_variables.add(variable)
    if published:  # as the pipelines do: children first, then the final state
        DockerImage.objects.using(alias).filter(pk__in=[frontend.pk, backend.pk]).update(state=ImageState.AVAILABLE)
        HelmChart.objects.using(alias).filter(pk=chart.pk).update(state=ChartState.INDEXED, indexed_at=timezone.now())
        ReleaseVersion.objects.using(alias).filter(pk=release.pk).update(
            state=ReleaseState.PUBLISHED, published_at=timezone.now()
        )
        for row in (release, frontend, backend, chart):
            row.refresh_from_db(using=alias)
    return World(
        alias=alias,
        release=release,
        frontend=frontend,
        backend=backend,
        chart=chart,
        artifact=artifact,
        dependency=dependency,
        image_link=DockerImage.environment_variables.through.objects.using(alias).get(dockerimage=frontend),
        chart_link=HelmChart.environment_variables.through.objects.using(alias).get(helmchart=chart),
        other_release=ReleaseVersion.objects.using(alias).create(version="2.0.0", commit_sha=COMMIT),
        other_image=image("threek8s-backend", "2.0.0", ImageState.QUEUED),
        other_chart=HelmChart.objects.using(alias).create(chart_version="2.0.0", app_version="2.0.0"),
        other_variable=other_variable,
    )


# One new value per frozen column; valid for the column, so only the trigger can refuse it.
CHANGES: dict[str, dict[str, Any]] = {
    "releases_releaseversion": {
        "id": lambda w: w.release.pk + 1000,
        "version": "1.0.1",
        "release_date": LATER,
        "changelog": "rewritten",
        "commit_sha": "b" * 40,
        "pr_number": 99,
        "release_notes": "rewritten",
        "parsed_changelog": {"component": None, "sections": [{"title": "Rewritten", "entries": []}]},
        "changelog_html": "<p>rewritten</p>",
        "layout": {"source": "rewritten", "chart": {"path": "other/"}},
        "state": ReleaseState.FAILED,
        "failure_reason": "rewritten",
        "failed_artifact": "rewritten",
        "published_at": LATER,
        "created": LATER,
    },
    "releases_releaseartifact": {
        "id": lambda w: w.artifact.pk + 1000,
        "release_id": lambda w: w.other_release.pk,
        "type": ArtifactType.DOCKER_BACKEND,
        "uri": lambda w: w.backend.pinned_uri,
        "checksum": lambda w: w.backend.digest,
        "size": 4321,
        "docker_image_id": lambda w: w.backend.pk,
        "helm_chart_id": lambda w: w.chart.pk,
        "created": LATER,
    },
    "releases_helmchart": {
        "id": lambda w: w.chart.pk + 1000,
        "name": "threek8s-renamed",
        "chart_version": "1.0.1",
        "app_version": "1.0.1",
        "description": "rewritten",
        "registry": "ghcr.io/stianfro/threek8s/other",
        "values": {"replicas": 9},
        "templates": ["other.yaml"],
        "chart_metadata": {"keywords": ["rewritten"]},
        "digest": digest_of("repackaged"),
        "size": 999,
        "package": b"other bytes",
        "package_digest": digest_of("other bytes"),
        "indexed_at": LATER,
        "state": ChartState.INVALID,
        "problems": ["rewritten"],
        "signed_with": "f" * 64,
        "signatures": {digest_of("repackaged"): {"of": "chart", "signature": digest_of("other sig")}},
        "warnings": ["rewritten"],
        "image_pins": {"frontend": {"values": "frontend.image", "tag": "1.0.1"}},
        "created": LATER,
    },
    "releases_chartdependency": {
        "id": lambda w: w.dependency.pk + 1000,
        "chart_id": lambda w: w.other_chart.pk,
        "name": "postgresql",
        "version": "^15.0.0",
        "repository": "https://charts.example.com",
        "condition": "postgresql.enabled",
        "locked_version": "15.9.9",
        "archive_digest": digest_of("another archive"),
        "lock_digest": digest_of("another lock"),
    },
    "releases_helmchart_environment_variables": {
        "id": lambda w: w.chart_link.pk + 1000,
        "helmchart_id": lambda w: w.other_chart.pk,
        "environmentvariable_id": lambda w: w.other_variable.pk,
    },
    "releases_dockerimage": {
        "id": lambda w: w.frontend.pk + 1000,
        "name": "threek8s-renamed",
        "tag": "1.0.1",
        "registry": "ghcr.io/stianfro/threek8s/other",
        "architecture": ["amd64"],
        "base_image": "alpine:3.20",
        "size": 999,
        "digest": digest_of("rebuilt"),
        "build_date": LATER,
        "labels": {"org.opencontainers.image.version": "1.0.1"},
        "platform_digests": {"linux/amd64": {"digest": digest_of("amd64")}},
        "signed_with": "f" * 64,
        "signatures": {digest_of("rebuilt"): {"of": "index", "signature": digest_of("other sig")}},
        "provenance": {"linux/amd64": {"payload": "", "payloadType": "x", "signatures": []}},
        "stage_bases": [{"stage": "0", "base": "alpine:3.20", "digest": digest_of("alpine"), "final": True}],
        "build_steps": {"linux/amd64": {"network": "host", "seconds": 1.0, "steps": []}},
        "component": "backend",
        "context_path": "other/",
        "dockerfile_path": "Other.Dockerfile",
        "build_args": {"NODE_VERSION": "22"},
        "state": ImageState.FAILED,
        "build_log": "rewritten",
        "scan_findings": [{"severity": "low", "check": "edited"}],
        "failure_reason": "rewritten",
        "created": LATER,
    },
    "releases_dockerimage_environment_variables": {
        "id": lambda w: w.image_link.pk + 1000,
        "dockerimage_id": lambda w: w.other_image.pk,
        "environmentvariable_id": lambda w: w.other_variable.pk,
    },
}
FROZEN = [(table, column) for table, columns in CHANGES.items() for column in columns]


def value(world: World, table: str, column: str) -> Any:
    change = CHANGES[table][column]
    return change(world) if callable(change) else change


def snapshot(alias: str, table: str, pk: int) -> tuple | None:
    """The stored row as the database returns it, bytes for bytes."""
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])
        row = cursor.fetchone()
    return None if row is None else tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def refused():
    return pytest.raises(IntegrityError, match=REFUSAL)


@pytest.fixture(params=["default", SQLITE], ids=["suite-db", "sqlite"])
def alias(request) -> str:
    return request.param


@pytest.fixture
def published(alias) -> World:
    return build_world(alias, published=True)


@pytest.fixture
def unpublished(alias) -> World:
    return build_world(alias, published=False)


# Published rows refuse -------------------------------------------------------------------------


@pytest.mark.parametrize(("table", "column"), FROZEN, ids=[f"{t.removeprefix('releases_')}.{c}" for t, c in FROZEN])
def test_frozen_column_of_a_published_row_cannot_change(published, table, column):
    row = published.row(table)
    before = snapshot(published.alias, table, row.pk)

    with refused(), transaction.atomic(using=published.alias):
        type(row).objects.using(published.alias).filter(pk=row.pk).update(**{column: value(published, table, column)})

    assert snapshot(published.alias, table, row.pk) == before


@pytest.mark.parametrize("table", list(CHANGES))
def test_published_row_cannot_be_deleted(published, table):
    row = published.row(table)
    before = snapshot(published.alias, table, row.pk)

    with refused(), transaction.atomic(using=published.alias), connections[published.alias].cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row.pk])

    assert snapshot(published.alias, table, row.pk) == before


def test_published_release_cannot_be_deleted_with_its_artifacts(published):
    with refused(), transaction.atomic(using=published.alias):
        ReleaseVersion.objects.using(published.alias).filter(pk=published.release.pk).delete()

    assert ReleaseVersion.objects.using(published.alias).filter(pk=published.release.pk).exists()
    assert published.release.artifacts.count() == 1


def test_published_release_cannot_go_back_to_draft(published):
    with refused(), transaction.atomic(using=published.alias):
        ReleaseVersion.objects.using(published.alias).filter(pk=published.release.pk).update(state=ReleaseState.DRAFT)

    assert ReleaseVersion.objects.using(published.alias).get(pk=published.release.pk).state == ReleaseState.PUBLISHED


INSERTS = {
    "artifact": lambda w: ReleaseArtifact.objects.using(w.alias).create(
        release=w.release,
        type=ArtifactType.DOCKER_BACKEND,
        uri=w.backend.pinned_uri,
        checksum=w.backend.digest,
        size=1234,
        docker_image=w.backend,
    ),
    "chart dependency": lambda w: ChartDependency.objects.using(w.alias).create(
        chart=w.chart, name="postgresql", version="^15.0.0", repository="https://charts.bitnami.com/bitnami"
    ),
    "chart environment variable": lambda w: w.chart.environment_variables.add(w.other_variable),
    "image environment variable": lambda w: w.frontend.environment_variables.add(w.other_variable),
}
COUNTS = {
    "artifact": lambda w: w.release.artifacts.count(),
    "chart dependency": lambda w: w.chart.dependencies.count(),
    "chart environment variable": lambda w: w.chart.environment_variables.count(),
    "image environment variable": lambda w: w.frontend.environment_variables.count(),
}


@pytest.mark.parametrize("child", list(INSERTS))
def test_nothing_is_added_to_a_published_row(published, child):
    before = COUNTS[child](published)

    with refused(), transaction.atomic(using=published.alias):
        INSERTS[child](published)

    assert COUNTS[child](published) == before


def test_an_artifact_cannot_be_moved_into_a_published_release(published):
    draft_artifact = ReleaseArtifact.objects.using(published.alias).create(
        release=published.other_release,
        type=ArtifactType.DOCKER_BACKEND,
        uri=published.other_image.pinned_uri,
        checksum=published.other_image.digest,
        size=1234,
        docker_image=published.other_image,
    )
    with refused(), transaction.atomic(using=published.alias):
        ReleaseArtifact.objects.using(published.alias).filter(pk=draft_artifact.pk).update(release=published.release)

    assert published.release.artifacts.count() == 1


def test_a_dependency_cannot_be_moved_onto_an_indexed_chart(published):
    dependency = ChartDependency.objects.using(published.alias).create(
        chart=published.other_chart, name="postgresql", version="^15.0.0", repository="https://charts.example.com"
    )
    with refused(), transaction.atomic(using=published.alias):
        ChartDependency.objects.using(published.alias).filter(pk=dependency.pk).update(chart=published.chart)

    assert published.chart.dependencies.count() == 1


def test_the_refusal_says_what_is_published_and_what_to_do(published):
    with pytest.raises(IntegrityError) as refusal, transaction.atomic(using=published.alias):
        HelmChart.objects.using(published.alias).filter(pk=published.chart.pk).update(package=b"swapped")

    assert "the chart version is indexed; published chart versions are immutable, publish a new version instead" in (
        str(refusal.value)
    )


# What stays writable ---------------------------------------------------------------------------


@pytest.mark.parametrize(("table", "column"), [(t, c) for t, columns in BOOKKEEPING.items() for c in columns])
def test_bookkeeping_of_a_published_row_may_change(published, table, column):
    row = published.row(table)
    new = BOOKKEEPING[table][column]

    assert type(row).objects.using(published.alias).filter(pk=row.pk).update(**{column: new}) == 1
    assert getattr(type(row).objects.using(published.alias).get(pk=row.pk), column) == new


def test_saving_an_unchanged_published_row_is_allowed(published):
    # The admin's Save on a published row: every column written again, only ``updated`` moves.
    for row in (published.release, published.frontend, published.chart, published.artifact, published.dependency):
        type(row).objects.using(published.alias).get(pk=row.pk).save(using=published.alias)


def test_latest_stays_writable(alias):
    latest = DockerImage.objects.using(alias).create(
        name="threek8s-frontend",
        tag="latest",
        state=ImageState.AVAILABLE,
        digest=digest_of("1.0.0"),
        size=1,
        build_date=timezone.now(),
    )
    variable = EnvironmentVariable.objects.using(alias).create(name="API_URL", default_value="/api", description="d")

    DockerImage.objects.using(alias).filter(pk=latest.pk).update(digest=digest_of("1.1.0"), size=2)
    latest.environment_variables.add(variable)
    latest.environment_variables.remove(variable)
    DockerImage.objects.using(alias).filter(pk=latest.pk).delete()

    assert not DockerImage.objects.using(alias).filter(pk=latest.pk).exists()


# A docker artifact never points at a chart too (CHECK constraint); primary keys are not edited.
NOT_EDITED = {"id"}
INCOHERENT = {"releases_releaseartifact": {"helm_chart_id"}}


@pytest.mark.parametrize("table", list(CHANGES))
def test_unpublished_row_stays_writable(unpublished, table):
    row = unpublished.row(table)
    before = snapshot(unpublished.alias, table, row.pk)
    changes = {
        column: value(unpublished, table, column)
        for column in CHANGES[table]
        if column not in NOT_EDITED | INCOHERENT.get(table, set())
    }

    assert type(row).objects.using(unpublished.alias).filter(pk=row.pk).update(**changes) == 1

    assert snapshot(unpublished.alias, table, row.pk) != before


def test_unpublished_rows_may_be_deleted_with_what_hangs_from_them(unpublished):
    alias = unpublished.alias
    unpublished.release.delete(using=alias)
    unpublished.chart.delete(using=alias)
    unpublished.frontend.delete(using=alias)

    for table in CHANGES:
        assert snapshot(alias, table, unpublished.row(table).pk) is None


@pytest.mark.parametrize("child", list(INSERTS))
def test_unpublished_row_may_gain_children(unpublished, child):
    before = COUNTS[child](unpublished)
    INSERTS[child](unpublished)
    assert COUNTS[child](unpublished) == before + 1


# The rules themselves --------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(CHANGES))
def test_every_column_is_frozen_or_listed_as_bookkeeping(alias, table):
    connection = connections[alias]
    with connection.cursor() as cursor:
        columns = {column.name for column in connection.introspection.get_table_description(cursor, table)}

    assert set(RULES[table].frozen) == columns - set(BOOKKEEPING[table])
    assert set(CHANGES[table]) == set(RULES[table].frozen)


def trigger_definitions(alias: str) -> dict[str, str]:
    connection = connections[alias]
    query = (
        "SELECT t.tgname, pg_get_triggerdef(t.oid) || p.prosrc FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
        " WHERE t.tgname LIKE 'releases_%' AND t.tgname NOT LIKE 'releases_releasewithdrawal%'"
        if connection.vendor == "postgresql"
        else "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'releases_%'"
        " AND name NOT LIKE 'releases_releasewithdrawal%'"
    )
    # (the withdrawal records' triggers, releases.database.withdrawals, are proven in test_withdrawal_records)
    with connection.cursor() as cursor:
        cursor.execute(query)
        return dict(cursor.fetchall())


def trigger_names(alias: str, rules) -> set[str]:
    if connections[alias].vendor == "postgresql":
        return {f"{rule.table}_immutable" for rule in rules}
    return {
        f"{rule.table}_immutable_{operation}"
        for rule in rules
        for operation in (("insert", "update", "delete") if rule.child else ("update", "delete"))
    }


# Transactional: the SQLite schema editor cannot run inside the test's transaction.
@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_triggers_are_recreated_idempotently_after_every_migrate(alias):
    installed = trigger_definitions(alias)
    assert set(installed) == trigger_names(alias, TABLES)

    for _ in range(2):
        with connections[alias].schema_editor() as editor:
            ensure_triggers(editor)
    call_command("migrate", database=alias, verbosity=0)

    assert trigger_definitions(alias) == installed


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_migration_0013_is_reversible(alias):
    try:
        call_command("migrate", "releases", "0012", database=alias, verbosity=0)
        assert set(trigger_definitions(alias)) == trigger_names(alias, TABLES_0002)
    finally:
        call_command("migrate", "releases", database=alias, verbosity=0)
    assert set(trigger_definitions(alias)) == trigger_names(alias, TABLES)


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_migration_0016_is_reversible_and_freezes_the_new_chart_columns(alias):
    try:
        call_command("migrate", "releases", "0015", database=alias, verbosity=0)
        definitions = trigger_definitions(alias)
        assert set(definitions) == trigger_names(alias, TABLES_0013)
        assert not any("lock_digest" in text or "chart_metadata" in text for text in definitions.values())
    finally:
        call_command("migrate", "releases", database=alias, verbosity=0)
    definitions = trigger_definitions(alias)
    assert set(definitions) == trigger_names(alias, TABLES)
    assert any("lock_digest" in text for text in definitions.values())
    assert any("chart_metadata" in text for text in definitions.values())


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_migration_0017_is_reversible_and_freezes_the_layout_columns(alias):
    try:
        call_command("migrate", "releases", "0016", database=alias, verbosity=0)
        definitions = trigger_definitions(alias)
        assert set(definitions) == trigger_names(alias, TABLES_0016)
        assert not any("image_pins" in sql or "build_args" in sql for sql in definitions.values())
    finally:
        call_command("migrate", "releases", database=alias, verbosity=0)
    definitions = trigger_definitions(alias)
    assert any("image_pins" in sql for sql in definitions.values())
    assert any('"layout"' in sql for sql in definitions.values())


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_migration_0020_freezes_the_signing_records_and_is_reversible(alias):
    try:
        call_command("migrate", "releases", "0019", database=alias, verbosity=0)
        definitions = trigger_definitions(alias)
        assert set(definitions) == trigger_names(alias, TABLES_0017)
        assert not any("signed_with" in sql or "provenance" in sql for sql in definitions.values())
    finally:
        call_command("migrate", "releases", database=alias, verbosity=0)
    definitions = trigger_definitions(alias)
    assert set(definitions) == trigger_names(alias, TABLES)
    assert any("signed_with" in sql and "provenance" in sql for sql in definitions.values())


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_migration_0024_freezes_the_build_record_and_is_reversible(alias):
    try:
        call_command("migrate", "releases", "0023", database=alias, verbosity=0)
        definitions = trigger_definitions(alias)
        assert set(definitions) == trigger_names(alias, TABLES_0020)
        assert any("provenance" in sql for sql in definitions.values())
        assert not any("stage_bases" in sql or "build_steps" in sql for sql in definitions.values())
    finally:
        call_command("migrate", "releases", database=alias, verbosity=0)
    definitions = trigger_definitions(alias)
    assert set(definitions) == trigger_names(alias, TABLES)
    assert any("stage_bases" in sql and "build_steps" in sql for sql in definitions.values())
