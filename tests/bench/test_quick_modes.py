"""Every benchmark's quick mode runs under the suite (small sizes, one round), through ``python -m
bench`` as ``bin/bench`` runs them, and prints its figures: a benchmark that no longer runs (a
seeder the database now refuses, a changed harness) fails here, not months later in a full run.

No timing is asserted: the goals are judged by the full runs only. The benchmarks' databases are
named after the suite's (``<test database>_quick_<benchmark>``) and they use the suite's Redis
database, so a quick run never meets a full run, another suite or the test database itself.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from django.conf import settings

from bench import BENCHMARKS
from tests.fixtures.services import service_missing

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
NOT_BENCHMARKS = {"__init__", "__main__", "figures", "results", "readme"}


def quick_prefix() -> str:
    """``<the suite's test database>_quick_``; needs the suite's PostgreSQL on 127.0.0.1:5432 (the
    benchmarks' server)."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        service_missing("the benchmarks need PostgreSQL (DATABASE_URL=postgres://postgres@127.0.0.1:5432/...)")
    if (database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)) not in {
        ("127.0.0.1", 5432),
        ("localhost", 5432),
    }:
        service_missing(
            f"the benchmarks use PostgreSQL on 127.0.0.1:5432, the suite {database['HOST']}:{database['PORT']}"
        )
    name = database["NAME"] if database["NAME"].startswith("test_") else f"test_{database['NAME']}"
    return f"{name}_quick_"


def suite_redis_db() -> int:
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, ValueError) as error:
        service_missing(f"Redis at {settings.CELERY_BROKER_URL} is not reachable: {error}")
    return int(urlparse(settings.CELERY_BROKER_URL).path.strip("/") or 0)


@pytest.fixture(scope="module")
def quick_databases():
    """The prefix of the quick runs' databases; every database with it is dropped at the end."""
    prefix = quick_prefix()
    yield prefix
    listed = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc", "SELECT datname FROM pg_database"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for name in (name for name in listed if name.startswith(prefix)):
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"],
            capture_output=True,
            check=False,
        )


def test_every_module_under_bench_is_registered():
    modules = {path.stem for path in (ROOT / "bench").glob("*.py") if not path.stem.startswith("_")}
    assert modules - NOT_BENCHMARKS == set(BENCHMARKS), "add the new benchmark to bench.BENCHMARKS"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_quick_mode_runs_and_prints_its_figures(name: str, tmp_path: Path, quick_databases: str):
    command = [sys.executable, "-m", "bench", "--quick", "--results-dir", str(tmp_path), name]
    command += ["--database-prefix", quick_databases, "--redis-db", str(suite_redis_db())]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    (results_file,) = tmp_path.glob("*.json")
    (run,) = json.loads(results_file.read_text())["benchmarks"]
    if run["status"] == "missing":
        service_missing(f"bench/{name}.py: {run['error']}")

    assert run["status"] == "ran", f"bench/{name}.py did not run:\n{output[-4000:]}"
    assert result.returncode == 0, output[-4000:]
    assert run["figures"], f"bench/{name}.py measured no figure"
    for figure in run["figures"]:
        assert f"figure: {figure['name']}: " in output, f"{figure['name']!r} was not printed"
        assert math.isfinite(figure["value"]), figure
        assert figure["reference"] is None or (math.isfinite(figure["reference"]) and figure["reference"] > 0), figure
        assert len(figure["rounds"]) == 1, f"quick mode is one round: {figure}"
    table = results_file.with_suffix(".md").read_text()
    assert f"| `bench/{name}.py` | {run['figures'][0]['name']}" in table
