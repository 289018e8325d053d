"""A database of its own for a benchmark: every benchmark that sets Django up calls :func:`use_database`
first, before anything imports Django models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What the worker is told by the benchmark alone: a value from the caller's shell would change
#: what is measured (a signing key, above all).
SIGNING_VARIABLES = ("SIGNING_KEY", "SIGNING_KEY_PASSWORD", "TRUSTED_SIGNING_KEYS")


def use_database(database: str, redis_db: int, **environment: str) -> None:
    """Point this process (and the workers it starts) at PostgreSQL ``database``, dropped and
    migrated afresh, and Redis database ``redis_db``, with ``environment`` over the defaults;
    then set Django up."""
    if database in ("test", "test_test") or redis_db in (0, 15):
        raise SystemExit(f"{database} / Redis {redis_db} belong to the test suite or bin/run; choose others")
    for name in SIGNING_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "SECRET_KEY": "bench-secret-key",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "LOG_LEVEL": "INFO",
            **environment,
        }
    )
    for sql in (f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
