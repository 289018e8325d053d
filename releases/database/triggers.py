"""Database triggers that keep published rows, and everything hanging from them, immutable.

The models refuse these changes with friendlier words (``DockerImage.save()``, ``HelmChart.delete()``,
``ChartDependency.clean()``...); the triggers hold the line for ``QuerySet.update()``/``delete()``,
raw SQL and other services sharing the database, on PostgreSQL and SQLite alike.

What is published, and what is frozen then (``TABLES``, one rule per table):

- a ``published`` release: its row (no update of content or state, no delete) and its artifacts
  (no insert, update or delete);
- an ``indexed`` chart: its row, its dependencies and its links to environment variables;
- an ``available`` image whose tag is not ``latest``: its row and its links to environment
  variables. ``latest`` is the one moving tag, so its row stays writable.

Every column of a published row is frozen except these bookkeeping columns, which say nothing
about what was published:

- ``progress`` (images, charts): the pipeline keeps reporting after publication; ``move_latest``
  writes "available; latest moved to 1.2.0" once the image is available, again on a redelivered task.
- ``updated`` (``auto_now``): every ``save()`` sets it, e.g. the admin's Save on a published row
  whose fields are all read-only.
- ``tag_order``/``version_order``: sort keys derived from the tag or version, recomputed by
  ``save()`` and by a data migration when the semver ordering changes (0005 filled them).
- ``last_progress_at``/``stall_requeues``: the stalled-work sweeper's clock and budget.

Everything else is frozen, including ``build_log``, ``scan_findings``, ``failure_reason``,
``problems`` and the signing records (``signed_with``, ``signatures``, ``provenance``, 0020):
nothing writes them after publication, and they record how the artifact was made.
An update that writes the same values again (``save()`` of an unchanged row) is allowed.

SQLite drops a table's triggers when a migration rebuilds the table, and refuses to rebuild a
table that another table's trigger reads (an artifact's trigger reads its release). So on SQLite
``lift_for_migrate`` drops them before ``migrate``, and on both ``ensure_triggers`` re-creates them
after every ``migrate`` (``releases.signals``): those of the newest trigger migration applied, so
that migrating back to 0012 restores the triggers 0002 installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.migrations.recorder import MigrationRecorder

_NEW_VERSION = "publish a new version instead"
_IMMUTABLE = f"published versions are immutable, {_NEW_VERSION}"


@dataclass(frozen=True)
class Rule:
    """What the database refuses on ``table`` while ``published`` holds for a row.

    ``published`` is an SQL condition on ``{row}`` (``OLD`` or ``NEW``); a condition that reads the
    parent row takes ``{lock}`` so that, on PostgreSQL, it waits for a concurrent transaction that
    is publishing the parent. A ``child`` row (an artifact, a dependency, an m2m link) also may not
    be inserted under a published parent nor moved to one.
    """

    table: str
    published: str
    frozen: tuple[str, ...]
    message: str
    child: bool = False

    def published_for(self, row: str, vendor: str) -> str:
        return self.published.format(row=row, lock=" FOR SHARE" if vendor == "postgresql" else "")


def _parent(table: str, key: str, condition: str) -> str:
    return f"EXISTS (SELECT 1 FROM {table} p WHERE p.id = {{row}}.{key} AND {condition}{{lock}})"


RELEASE_PUBLISHED = "{row}.state = 'published'"
CHART_INDEXED = "{row}.state = 'indexed'"
IMAGE_PUBLISHED = "{row}.state = 'available' AND {row}.tag <> 'latest'"

TABLES = [
    Rule(
        "releases_releaseversion",
        RELEASE_PUBLISHED,
        (
            "id",
            "version",
            "release_date",
            "changelog",
            "commit_sha",
            "pr_number",
            "release_notes",
            "parsed_changelog",
            "changelog_html",
            "layout",
            "state",
            "failure_reason",
            "failed_artifact",
            "published_at",
            "created",
        ),
        f"the release is published; {_IMMUTABLE}",
    ),
    Rule(
        "releases_releaseartifact",
        _parent("releases_releaseversion", "release_id", "p.state = 'published'"),
        ("id", "release_id", "type", "uri", "checksum", "size", "docker_image_id", "helm_chart_id", "created"),
        f"the release of this artifact is published; {_IMMUTABLE}",
        child=True,
    ),
    Rule(
        "releases_helmchart",
        CHART_INDEXED,
        (
            "id",
            "name",
            "chart_version",
            "app_version",
            "description",
            "registry",
            "values",
            "templates",
            "chart_metadata",
            "digest",
            "size",
            "package",
            "package_digest",
            "indexed_at",
            "state",
            "problems",
            "warnings",
            "image_pins",
            "signed_with",
            "signatures",
            "created",
        ),
        f"the chart version is indexed; published chart versions are immutable, {_NEW_VERSION}",
    ),
    Rule(
        "releases_chartdependency",
        _parent("releases_helmchart", "chart_id", "p.state = 'indexed'"),
        (
            "id",
            "chart_id",
            "name",
            "version",
            "repository",
            "condition",
            "locked_version",
            "archive_digest",
            "lock_digest",
        ),
        f"the chart of this dependency is indexed; {_IMMUTABLE}",
        child=True,
    ),
    Rule(
        "releases_helmchart_environment_variables",
        _parent("releases_helmchart", "helmchart_id", "p.state = 'indexed'"),
        ("id", "helmchart_id", "environmentvariable_id"),
        f"the chart version is indexed, with its environment variables; {_IMMUTABLE}",
        child=True,
    ),
    Rule(
        "releases_dockerimage",
        IMAGE_PUBLISHED,
        (
            "id",
            "name",
            "tag",
            "registry",
            "architecture",
            "base_image",
            "size",
            "digest",
            "build_date",
            "labels",
            "platform_digests",
            "component",
            "context_path",
            "dockerfile_path",
            "build_args",
            "state",
            "build_log",
            "scan_findings",
            "failure_reason",
            "signed_with",
            "signatures",
            "provenance",
            "stage_bases",
            "build_steps",
            "created",
        ),
        f"the image tag is published; published image tags are immutable, {_NEW_VERSION}",
    ),
    Rule(
        "releases_dockerimage_environment_variables",
        _parent("releases_dockerimage", "dockerimage_id", "p.state = 'available' AND p.tag <> 'latest'"),
        ("id", "dockerimage_id", "environmentvariable_id"),
        f"the image tag is published, with its environment variables; {_IMMUTABLE}",
        child=True,
    ),
]


def _without(rules: list[Rule], columns: dict[str, tuple[str, ...]]) -> list[Rule]:
    """``rules`` as an older migration installed them: without the columns added since, per table."""
    return [
        Rule(
            rule.table,
            rule.published,
            tuple(c for c in rule.frozen if c not in columns.get(rule.table, ())),
            rule.message,
            rule.child,
        )
        for rule in rules
    ]


# The signing records (migration 0020): what was signed at publication.
_SIGNING_COLUMNS = {
    "releases_helmchart": ("signed_with", "signatures"),
    "releases_dockerimage": ("signed_with", "signatures", "provenance"),
}

# What migration 0020 installed: before 0024 added the build record (stage bases, build steps).
TABLES_0020 = _without(TABLES, {"releases_dockerimage": ("stage_bases", "build_steps")})

# What migration 0017 installed: before 0020 added the signing records.
TABLES_0017 = _without(TABLES_0020, _SIGNING_COLUMNS)

# What migration 0016 installed: before 0017 added the release's layout, an image's component and
# build args, a chart's warnings and pins.
TABLES_0016 = _without(
    TABLES_0017,
    {
        "releases_releaseversion": ("layout",),
        "releases_dockerimage": ("component", "build_args"),
        "releases_helmchart": ("warnings", "image_pins"),
    },
)

# What migration 0013 installed, kept as it was: before 0016 added the chart's index metadata and
# its dependencies' Chart.lock pins.
TABLES_0013 = _without(
    TABLES_0016,
    {
        "releases_helmchart": ("chart_metadata",),
        "releases_chartdependency": ("locked_version", "archive_digest", "lock_digest"),
    },
)

# What migration 0002 installed, kept as it was: 0002 runs on tables that lack later columns, and
# migrating back from 0013 restores it.
TABLES_0002 = [
    Rule(
        "releases_dockerimage",
        IMAGE_PUBLISHED,
        ("digest", "tag", "name", "registry", "state"),
        "published image tags are immutable; publish a new version instead",
    ),
    Rule(
        "releases_helmchart",
        CHART_INDEXED,
        ("digest", "chart_version", "app_version", "name", "registry", "state"),
        "published chart versions are immutable; publish a new version instead",
    ),
]

# The trigger migrations, oldest first, and the rules each one installs.
MIGRATIONS = [
    ("0002_immutability_triggers", TABLES_0002),
    ("0013_published_rows_immutable", TABLES_0013),
    ("0016_chart_dependency_locks_and_index_metadata", TABLES_0016),
    ("0017_release_layout", TABLES_0017),
    ("0020_signing", TABLES_0020),
    ("0024_build_record", TABLES),
]


def _changed(fields: tuple[str, ...], distinct: str) -> str:
    return " OR ".join(f'NEW."{f}" {distinct} OLD."{f}"' for f in fields)


def _postgresql(rule: Rule) -> list[str]:
    function = f"{rule.table}_immutable"
    old, new = rule.published_for("OLD", "postgresql"), rule.published_for("NEW", "postgresql")
    moved_in = f" OR ({new})" if rule.child else ""
    operations = "INSERT OR UPDATE OR DELETE" if rule.child else "UPDATE OR DELETE"
    refuse = "RAISE EXCEPTION '{message} ({operation} refused)' USING ERRCODE = 'integrity_constraint_violation';"
    insert = f"""
  IF TG_OP = 'INSERT' THEN
    IF {new} THEN
      {refuse.format(message=rule.message, operation="insert")}
    END IF;
    RETURN NEW;
  END IF;"""
    return [
        f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN{insert if rule.child else ""}
  IF TG_OP = 'DELETE' THEN
    IF {old} THEN
      {refuse.format(message=rule.message, operation="delete")}
    END IF;
    RETURN OLD;
  END IF;
  IF ({_changed(rule.frozen, "IS DISTINCT FROM")}) AND (({old}){moved_in}) THEN
    {refuse.format(message=rule.message, operation="update")}
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql""",
        f"""CREATE TRIGGER {function} BEFORE {operations} ON {rule.table}
  FOR EACH ROW EXECUTE FUNCTION {function}()""",
    ]


def _sqlite(rule: Rule) -> list[str]:
    old, new = rule.published_for("OLD", "sqlite"), rule.published_for("NEW", "sqlite")
    moved_in = f" OR ({new})" if rule.child else ""
    statements = [
        f"""CREATE TRIGGER {rule.table}_immutable_update BEFORE UPDATE ON {rule.table}
FOR EACH ROW WHEN ({_changed(rule.frozen, "IS NOT")}) AND (({old}){moved_in})
BEGIN SELECT RAISE(ABORT, '{rule.message} (update refused)'); END""",
        f"""CREATE TRIGGER {rule.table}_immutable_delete BEFORE DELETE ON {rule.table}
FOR EACH ROW WHEN {old}
BEGIN SELECT RAISE(ABORT, '{rule.message} (delete refused)'); END""",
    ]
    if rule.child:
        statements.append(
            f"""CREATE TRIGGER {rule.table}_immutable_insert BEFORE INSERT ON {rule.table}
FOR EACH ROW WHEN {new}
BEGIN SELECT RAISE(ABORT, '{rule.message} (insert refused)'); END"""
        )
    return statements


def _drop(schema_editor, rules: list[Rule]) -> None:
    vendor = schema_editor.connection.vendor
    for rule in rules:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {rule.table}_immutable ON {rule.table}")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {rule.table}_immutable()")
        elif vendor == "sqlite":
            for operation in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {rule.table}_immutable_{operation}")


def _install(schema_editor, rules: list[Rule]) -> None:
    """Replace the triggers of ``rules`` (idempotent; in the schema editor's transaction, so never absent)."""
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        return
    _drop(schema_editor, rules)
    for rule in rules:
        for statement in _postgresql(rule) if vendor == "postgresql" else _sqlite(rule):
            schema_editor.execute(statement)


def ensure_triggers(schema_editor) -> None:
    """(Re)create the triggers of the newest trigger migration applied; called after every ``migrate``."""
    recorder = MigrationRecorder(schema_editor.connection)
    applied = {name for app, name in recorder.applied_migrations() if app == "releases"}
    for name, rules in reversed(MIGRATIONS):
        if name in applied:
            _install(schema_editor, rules)
            return


def lift_for_migrate(schema_editor) -> None:
    """On SQLite, drop every trigger before ``migrate`` so that migrations may rebuild tables."""
    if schema_editor.connection.vendor == "sqlite":
        _drop(schema_editor, TABLES)


# The trigger migrations. On SQLite they install nothing: a later migration in the same ``migrate``
# may rebuild a table another table's trigger reads, which SQLite refuses; ``lift_for_migrate``
# drops the triggers before every migrate and ``ensure_triggers`` puts the right ones back after it.
def _migrating_sqlite(schema_editor) -> bool:
    return schema_editor.connection.vendor == "sqlite"


# Migration 0002.
def create_triggers(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _install(schema_editor, TABLES_0002)


def drop_triggers(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _drop(schema_editor, TABLES_0002)


# Migration 0013.
def freeze_published_rows(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _install(schema_editor, TABLES_0013)


def restore_0002_triggers(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _drop(schema_editor, TABLES_0013)
        _install(schema_editor, TABLES_0002)


# Migration 0016 (chart dependency locks and index metadata): its new columns are frozen too.
def lift_on_sqlite(apps, schema_editor) -> None:
    lift_for_migrate(schema_editor)


def freeze_chart_locks_and_metadata(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _install(schema_editor, TABLES_0016)


def restore_0013_triggers(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _install(schema_editor, TABLES_0013)


# Migration 0017 (release layout): its new columns are frozen too.
def freeze_layout_columns(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _install(schema_editor, TABLES_0017)


def restore_0016_triggers(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _drop(schema_editor, TABLES)
        _install(schema_editor, TABLES_0016)


# Migration 0020: the signing records (signed_with, signatures, provenance) are frozen too.
def freeze_signing_records(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _install(schema_editor, TABLES_0020)


def restore_0017_triggers(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _drop(schema_editor, TABLES)
        _install(schema_editor, TABLES_0017)


# Migration 0024: the build record (stage_bases, build_steps) is frozen too.
def freeze_build_record(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _install(schema_editor, TABLES)


def restore_0020_triggers(apps, schema_editor) -> None:
    if not _migrating_sqlite(schema_editor):
        _drop(schema_editor, TABLES)
        _install(schema_editor, TABLES_0020)
