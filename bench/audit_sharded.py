"""The sharded audit on two Celery workers against wrk on the same registry.

Run: ``.venv/bin/python -m bench.audit_sharded [--quick]`` (about 4 minutes). It starts its own
registry (storage on /dev/shm when there is room), pushes the 10,000 tags of ``bench/audit_tags.py``
(100 repositories x 100 tags) plus each repository's ``latest``, records them as published images
in its own PostgreSQL database (``bench_audit_sharded``, recreated), starts two workers on the
``audits`` queue (Redis database 6; one process each, ``AUDIT_CONCURRENCY`` 8 each: 16 connections
in all, as wrk's) and measures, alternating, 5 times (the goal is within the noise: the spread is
reported):

(a) the sharded audit (``audit_published_tags``: batches of ``AUDIT_BATCH_SIZE`` 2,500 tags as a
    chord over the two workers), tags checked / the run's wall clock (started to finished);
(b) ``wrk -t2 -c16`` GETs of the same manifests (``bench/audit_tags.py``'s script); goal: (a) >= 0.8x (b);
(c) each worker process's peak RSS (VmHWM) after a run over the first 1,000 tags, then after the
    10,000-tag runs; goal: flat (< 8 MiB more).
Quick mode: 100 tags, batches of 40, one round, 1-second wrk runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Per worker; 16 in all, as wrk's. The registry is CPU-bound on 2 cores: 2 x 16 only adds contention.
CONCURRENCY_PER_WORKER = 8
from bench._database import use_database  # noqa: E402
from bench._tools import require  # noqa: E402
from bench.audit_tags import (  # noqa: E402
    CONCURRENCY,
    FULL_TAGS,
    QUICK_TAGS,
    Tags,
    _default_workdir,
    expected_tags,
    populate,
    run_wrk,
    write_wrk_script,
)
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, ratio_figure  # noqa: E402

assert 2 * CONCURRENCY_PER_WORKER == CONCURRENCY, "the workers' connections in all are wrk's"


@dataclass(frozen=True)
class Sizes:
    tags: Tags
    batch: int
    rounds: int
    wrk_seconds: int
    small_run: int


QUICK = Sizes(QUICK_TAGS, batch=40, rounds=1, wrk_seconds=1, small_run=30)
FULL = Sizes(FULL_TAGS, batch=2500, rounds=EDGE_ROUNDS, wrk_seconds=10, small_run=1000)


def record_published(host: str, database: Path, first: int, count: int) -> None:
    """Rows ``first..first+count`` of the expected tags as published images (index kind as pushed)."""
    import sqlite3

    from bench._seed import published_images

    connection = sqlite3.connect(database)
    rows = connection.execute(
        "SELECT repository, tag, digest, kind FROM expected ORDER BY id LIMIT ? OFFSET ?", (count, first)
    ).fetchall()
    connection.close()
    published_images(rows, registry=f"{host}/bench")


def push_latest(host: str, database: Path) -> None:
    """Each repository's ``latest``: its tags all point at one manifest, so it is that one."""
    from releases.oci import RegistryClient

    seen = set()
    with RegistryClient(host) as client:
        for tag in expected_tags(database, 10**9):
            if tag.repository not in seen:
                seen.add(tag.repository)
                body, media_type, _ = client.get_manifest(tag.repository, tag.digest)
                client.put_manifest(tag.repository, "latest", body, media_type)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def worker_peaks(workers) -> list[float]:
    return [peak_rss_mib(child) for worker in workers for child in children(worker.pid)]


def audit_once(expected: int) -> float:
    from releases.models import AuditRun
    from releases.tasks import audit_published_tags

    # The run this call starts is the first one after the newest now (reading the count and the
    # newest row separately raced with the run's creation and took the previous run for it).
    newest_before = AuditRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    audit_published_tags.delay(triggered_by="bench")
    deadline = time.monotonic() + 600
    while True:
        run = AuditRun.objects.filter(pk__gt=newest_before).order_by("pk").first()
        if run is not None and run.status != AuditRun.Status.RUNNING:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the audit did not finish in 600 s")
        time.sleep(0.2)
    if run.status != AuditRun.Status.SUCCEEDED or run.tags_checked != expected or run.findings_by_type:
        raise SystemExit(
            f"audit {run.pk}: {run.status!r}, {run.tags_checked} tags checked of {expected}, findings "
            f"{run.findings_by_type!r}, error {run.error!r}"
        )
    return run.tags_checked / (run.finished - run.started).total_seconds()


def run(quick: bool) -> list[Figure]:
    sizes = QUICK if quick else FULL
    require("wrk", "docker-registry")
    use_database(
        "audit_sharded",
        redis_db=6,
        AUDIT_CONCURRENCY=str(CONCURRENCY_PER_WORKER),
        AUDIT_BATCH_SIZE=str(sizes.batch),
        LOG_LEVEL="INFO",  # the workers say "ready." at INFO
    )
    from releases.sandbox.registry import start_registry
    from tests.fixtures.celery_worker import start_worker, stop_worker, worker_environment

    workdir = Path(tempfile.mkdtemp(prefix="audit-sharded-", dir=_default_workdir()))
    registry = start_registry(workdir / "registry", {"log": {"level": "warn"}})
    workers = []
    print(f"registry {registry.url}, {os.cpu_count()} CPUs")
    try:
        database = workdir / "expected.sqlite3"
        total = populate(registry.host, database, sizes.tags)
        repositories = sizes.tags.repositories
        push_latest(registry.host, database)
        script = workdir / "tags.lua"
        write_wrk_script(database, script)
        for number in range(2):
            env = worker_environment({})
            workers.append(
                start_worker(env, workdir / f"worker{number}.log", queues=("audits",), concurrency=1, name=f"a{number}")
            )

        # the peak RSS first: a run over the first tags (every repository's latest too), then the rest recorded
        record_published(registry.host, database, 0, sizes.small_run)
        small_rate = audit_once(sizes.small_run + repositories)
        small_peaks = worker_peaks(workers)
        record_published(registry.host, database, sizes.small_run, total - sizes.small_run)
        run_wrk(registry.url, registry.process.pid, script, 1 if quick else 2)  # warm-up

        audits, wrks = [], []
        for round_number in range(sizes.rounds):
            order = ["audit", "wrk"] if round_number % 2 == 0 else ["wrk", "audit"]
            for who in order:
                if who == "audit":
                    audits.append(audit_once(total + repositories))
                else:
                    wrks.append(run_wrk(registry.url, registry.process.pid, script, sizes.wrk_seconds).rate)
            print(f"  round {round_number + 1}: sharded audit {audits[-1]:5.0f} tags/s   wrk {wrks[-1]:5.0f} req/s")
        large_peaks = worker_peaks(workers)
    finally:
        for worker in workers:
            stop_worker(worker, timeout=60)
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    growth = max(large - small for small, large in zip(small_peaks, large_peaks, strict=True))
    return [
        ratio_figure(
            f"{total + repositories:,} tags (with latest), sharded audit on two audits workers "
            f"({CONCURRENCY_PER_WORKER} connections each, batches of {sizes.batch:,}): run wall clock / "
            f"wrk GET of the same manifests ({CONCURRENCY} connections)",
            audits,
            wrks,
            "tags/s",
            Goal(">=", 0.8),
            note=f"a {sizes.small_run + repositories:,}-tag run: {small_rate:.0f} tags/s",
        ),
        Figure(
            f"each worker process's peak RSS after {total + repositories:,}-tag runs minus after a "
            f"{sizes.small_run + repositories:,}-tag run (the largest)",
            growth,
            "MiB",
            goal=Goal("<", 8, " MiB"),
            note=f"{', '.join(f'{m:.1f}' for m in small_peaks)} -> {', '.join(f'{m:.1f}' for m in large_peaks)} MiB",
        ),
    ]


if __name__ == "__main__":
    main(run)
