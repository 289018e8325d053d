"""Database triggers that keep withdrawal records append-only and in turn (``ReleaseWithdrawal``).

On PostgreSQL and SQLite alike, whoever writes (the ORM, ``QuerySet.update()``/``delete()``, raw
SQL, another service sharing the database):

- UPDATE and DELETE of a ``releases_releasewithdrawal`` row are refused: a withdrawal, once
  recorded, stays as it was recorded (who, when, why);
- an INSERT is refused unless its release is published and it is the release's next record
  (``sequence`` = the newest + 1). With the table's constraints (unique ``(release, sequence)``,
  odd sequences withdraw, even ones restore) this refuses withdrawing a withdrawn release and
  restoring one that is not withdrawn. On PostgreSQL the trigger locks the release row
  (``FOR UPDATE``), so concurrent records of one release are numbered one after the other;
  SQLite has one writer at a time.

TRUNCATE (how the test suite empties PostgreSQL) fires no row trigger and is not refused.

Like ``releases.database.triggers``: on SQLite a trigger that reads another table stops migrations from
rebuilding that table, so ``lift_for_migrate`` drops these before ``migrate`` and
``ensure_triggers`` re-creates them after it, once migration 0021 is applied.
"""

from __future__ import annotations

from django.db.migrations.recorder import MigrationRecorder

TABLE = "releases_releasewithdrawal"
MIGRATION = "0021_release_withdrawals"

APPEND_ONLY = "withdrawal records are append-only: record a restoration (or a new withdrawal) instead"
NOT_PUBLISHED = "only a published release can be withdrawn or restored"
OUT_OF_TURN = (
    "this withdrawal record is out of turn: a release is withdrawn only when it is not withdrawn, "
    "and restored only when it is"
)

_POSTGRESQL = [
    f"""
CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger AS $$
DECLARE
  release_state text;
  newest integer;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION '{APPEND_ONLY} (update refused)' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION '{APPEND_ONLY} (delete refused)' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  SELECT state INTO release_state FROM releases_releaseversion WHERE id = NEW.release_id FOR UPDATE;
  IF release_state IS DISTINCT FROM 'published' THEN
    RAISE EXCEPTION '{NOT_PUBLISHED} (insert refused)' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  SELECT COALESCE(MAX(sequence), 0) INTO newest FROM {TABLE} WHERE release_id = NEW.release_id;
  IF NEW.sequence IS DISTINCT FROM newest + 1 THEN
    RAISE EXCEPTION '{OUT_OF_TURN} (insert refused)' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql""",
    f"""CREATE TRIGGER {TABLE}_append_only BEFORE INSERT OR UPDATE OR DELETE ON {TABLE}
  FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()""",
]

_SQLITE = [
    f"""CREATE TRIGGER {TABLE}_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY} (update refused)'); END""",
    f"""CREATE TRIGGER {TABLE}_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY} (delete refused)'); END""",
    f"""CREATE TRIGGER {TABLE}_insert_published BEFORE INSERT ON {TABLE}
FOR EACH ROW WHEN (SELECT state FROM releases_releaseversion WHERE id = NEW.release_id) IS NOT 'published'
BEGIN SELECT RAISE(ABORT, '{NOT_PUBLISHED} (insert refused)'); END""",
    f"""CREATE TRIGGER {TABLE}_insert_in_turn BEFORE INSERT ON {TABLE}
FOR EACH ROW WHEN NEW.sequence IS NOT
  (SELECT COALESCE(MAX(sequence), 0) + 1 FROM {TABLE} WHERE release_id = NEW.release_id)
BEGIN SELECT RAISE(ABORT, '{OUT_OF_TURN} (insert refused)'); END""",
]


def _drop(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_append_only()")
    elif vendor == "sqlite":
        for name in ("update", "delete", "insert_published", "insert_in_turn"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name}")


def _install(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        return
    _drop(schema_editor)
    for statement in _POSTGRESQL if vendor == "postgresql" else _SQLITE:
        schema_editor.execute(statement)


def ensure_triggers(schema_editor) -> None:
    """(Re)create the triggers once migration 0021 is applied; called after every ``migrate``."""
    recorder = MigrationRecorder(schema_editor.connection)
    if ("releases", MIGRATION) in recorder.applied_migrations():
        _install(schema_editor)


def lift_for_migrate(schema_editor) -> None:
    """On SQLite, drop the triggers before ``migrate`` so that migrations may rebuild tables."""
    if schema_editor.connection.vendor == "sqlite":
        _drop(schema_editor)


# Migration 0021. On SQLite it installs nothing (see ``releases.database.triggers``): ``ensure_triggers``
# does, after the whole ``migrate``.
def install_withdrawal_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "sqlite":
        _install(schema_editor)


def drop_withdrawal_triggers(apps, schema_editor) -> None:
    _drop(schema_editor)
