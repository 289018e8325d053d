"""Database triggers that keep published tags immutable even for writes that bypass the models.

``DockerImage.save()`` and ``HelmChart.save()`` refuse the same changes with friendlier words;
these triggers hold the line for ``QuerySet.update()``, raw SQL and other services sharing the
database. ``latest`` is the one exempt tag. SQLite drops a table's triggers when a migration
rebuilds the table, so they are (re)created after every ``migrate`` too (``ensure_triggers``).
"""

IMAGE_FIELDS = ("digest", "tag", "name", "registry", "state")
CHART_FIELDS = ("digest", "chart_version", "app_version", "name", "registry", "state")

IMAGE_MESSAGE = "published image tags are immutable; publish a new version instead"
CHART_MESSAGE = "published chart versions are immutable; publish a new version instead"


def _changed(fields, distinct):
    return " OR ".join(f"NEW.{f} {distinct} OLD.{f}" for f in fields)


def _postgresql(table, published_when, fields, message):
    function = f"{table}_immutable"
    return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
  IF {published_when} THEN
    IF TG_OP = 'DELETE' THEN
      RAISE EXCEPTION '{message} (delete refused)' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF {_changed(fields, "IS DISTINCT FROM")} THEN
      RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS {function} ON {table};
CREATE TRIGGER {function} BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {function}();
"""


def _sqlite(table, published_when, fields, message):
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_immutable_update BEFORE UPDATE ON {table}
FOR EACH ROW WHEN ({published_when}) AND ({_changed(fields, "IS NOT")})
BEGIN SELECT RAISE(ABORT, '{message}'); END;""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_immutable_delete BEFORE DELETE ON {table}
FOR EACH ROW WHEN ({published_when})
BEGIN SELECT RAISE(ABORT, '{message} (delete refused)'); END;""",
    ]


TABLES = [
    ("releases_dockerimage", "OLD.state = 'available' AND OLD.tag <> 'latest'", IMAGE_FIELDS, IMAGE_MESSAGE),
    ("releases_helmchart", "OLD.state = 'indexed'", CHART_FIELDS, CHART_MESSAGE),
]


def create_triggers(apps, schema_editor):
    ensure_triggers(schema_editor)


def ensure_triggers(schema_editor):
    vendor = schema_editor.connection.vendor
    for table, when, fields, message in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(_postgresql(table, when, fields, message))
        elif vendor == "sqlite":
            for statement in _sqlite(table, when, fields, message):
                schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table, *_ in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_immutable()")
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable_update")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable_delete")
