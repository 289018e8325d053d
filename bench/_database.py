"""A database of its own for a benchmark: every benchmark that sets Django up calls :func:`use_database`
first, before anything imports Django models.

Its PostgreSQL database is ``<prefix><benchmark>``, a copy of ``<prefix>template_<hash>``, which is
migrated once. The prefix is ``bench_`` unless ``--database-prefix`` says otherwise: the quick runs
under the test suite use one derived from the suite's database, so they never meet a full run,
another suite or the test database. Its Redis database is the benchmark's own unless
``--redis-db`` says otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What the worker is told by the benchmark alone: a value from the caller's shell would change
#: what is measured (a signing key, above all).
SIGNING_VARIABLES = ("SIGNING_KEY", "SIGNING_KEY_PASSWORD", "TRUSTED_SIGNING_KEYS")
DEFAULT_PREFIX = "bench_"
#: bin/run's Redis database.
RESERVED_REDIS = 0

_prefix = DEFAULT_PREFIX
_redis_db: int | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-prefix",
        default=DEFAULT_PREFIX,
        help=f"PostgreSQL databases are <prefix><benchmark>, dropped and created afresh (default {DEFAULT_PREFIX})",
    )
    parser.add_argument(
        "--redis-db", type=int, default=None, help="Redis database for the broker (default: the benchmark's own)"
    )


def configure(args: argparse.Namespace) -> None:
    """Take ``--database-prefix`` and ``--redis-db``; refuses what would touch another's data."""
    global _prefix, _redis_db
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.database_prefix):
        raise SystemExit(f"--database-prefix {args.database_prefix!r}: lower-case letters, digits and _ only")
    if args.redis_db is not None and not 0 < args.redis_db < 16:
        raise SystemExit(f"--redis-db {args.redis_db}: choose 1 to 15 ({RESERVED_REDIS} is bin/run's)")
    _prefix, _redis_db = args.database_prefix, args.redis_db


def arguments() -> list[str]:
    """The options that pass this process's choice on to another benchmark process."""
    chosen = ["--database-prefix", _prefix]
    return chosen + (["--redis-db", str(_redis_db)] if _redis_db is not None else [])


def database_name(benchmark: str) -> str:
    return f"{_prefix}{benchmark}"


def use_database(benchmark: str, redis_db: int, **environment: str) -> None:
    """Point this process (and the workers it starts) at PostgreSQL ``<prefix><benchmark>``, created
    afresh from the migrated template, and Redis database ``redis_db`` (or ``--redis-db``), with
    ``environment`` over the defaults; then set Django up."""
    database = database_name(benchmark)
    redis_db = redis_db if _redis_db is None else _redis_db
    if redis_db == RESERVED_REDIS:
        raise SystemExit(f"Redis {redis_db} belongs to bin/run; choose another")
    for name in SIGNING_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "SECRET_KEY": "bench-secret-key",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,testserver",
            "SECURE_SSL_REDIRECT": "false",
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "LOG_LEVEL": "INFO",
            **environment,
        }
    )
    template = migrated_template()
    psql(f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database} TEMPLATE {template}")
    os.environ["DATABASE_URL"] = url(database)
    import django

    django.setup()


def migrated_template() -> str:
    """``<prefix>template_<hash>``: a database migrated once for every benchmark of this prefix (a
    migrate costs seconds, a copy a fraction of one), named after what ``migrate`` depends on, so
    that a new migration or a new pin makes a new one; made under another name and renamed when
    migrated, so a failed migrate leaves no half-made template behind."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("releases/migrations/*.py"), *ROOT.glob("requirements/*.txt")]):
        digest.update(path.name.encode() + path.read_bytes())
    for module in ("database/triggers.py", "signals.py"):  # what runs after migrate
        digest.update((ROOT / "releases" / module).read_bytes())
    template = f"{_prefix}template_{digest.hexdigest()[:12]}"
    existing = psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{_prefix}template\\_%'").split()
    if template in existing:
        return template
    for stale in existing:
        psql(f"DROP DATABASE IF EXISTS {stale}")
    making = f"{template}_making"
    psql(f"DROP DATABASE IF EXISTS {making}", f"CREATE DATABASE {making}")
    environment = {**os.environ, "DATABASE_URL": url(making)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=environment, check=True)
    psql(f"ALTER DATABASE {making} RENAME TO {template}")
    return template


def url(database: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{database}"


def psql(*statements: str) -> str:
    """Run ``statements`` on the server's ``postgres`` database; answers what they printed."""
    output = ""
    for sql in statements:
        output += subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc", sql],
            env={**os.environ, "PGOPTIONS": "--client-min-messages=warning"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return output
