"""The sharded audit on two Celery workers against wrk on the same registry.

Run: ``.venv/bin/python bench/audit_sharded.py`` (about 3 minutes). It starts its own registry
(storage on /dev/shm when there is room), pushes the 10,000 tags of ``bench/audit_tags.py`` (100
repositories x 100 tags) plus each repository's ``latest``, records them as published images in
its own PostgreSQL database (``bench_audit``, recreated), starts two workers on the ``audits``
queue (Redis database 6; one process each, ``AUDIT_CONCURRENCY`` 8 each: 16 connections in all,
as wrk's) and measures, alternating, ``--rounds`` times:

(a) the sharded audit (``audit_published_tags``: batches of ``AUDIT_BATCH_SIZE`` 2,500 tags as a
    chord over the two workers), tags checked / the run's wall clock (started to finished);
(b) ``wrk -t2 -c16`` GETs of the same manifests (``bench/audit_tags.py``'s script); goal: (a) >= 0.8x (b);
(c) each worker process's peak RSS (VmHWM) after a run over the first 1,000 tags, then after the
    10,000-tag runs; goal: flat (< 8 MiB more).
Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATABASE = "bench_audit"
# Per worker; 16 in all, as wrk's. The registry is CPU-bound on 2 cores: 2 x 16 only adds contention.
CONCURRENCY_PER_WORKER = 8
from bench._database import use_database  # noqa: E402
from bench.audit_tags import (  # noqa: E402
    CONCURRENCY,
    REPOSITORIES,
    _default_workdir,
    expected_tags,
    populate,
    run_wrk,
    write_wrk_script,
)

assert 2 * CONCURRENCY_PER_WORKER == CONCURRENCY, "the workers' connections in all are wrk's"


def record_published(host: str, database: Path, first: int, count: int) -> None:
    """Rows ``first..first+count`` of the expected tags as published images (index kind as pushed)."""
    import sqlite3

    from django.utils import timezone

    from releases.choices import ImageState
    from releases.models import DockerImage
    from releases.versions import column_sort_key

    connection = sqlite3.connect(database)
    rows = connection.execute(
        "SELECT repository, tag, digest, kind FROM expected ORDER BY id LIMIT ? OFFSET ?", (count, first)
    ).fetchall()
    connection.close()
    now = timezone.now()
    platforms = {"linux/amd64": {}, "linux/arm64/v8": {}}
    DockerImage.objects.bulk_create(
        DockerImage(
            name=repository.split("/", 1)[1],
            tag=tag,
            tag_order=column_sort_key(tag),
            registry=f"{host}/bench",
            state=ImageState.AVAILABLE,
            digest=digest,
            size=1000,
            build_date=now,
            platform_digests=platforms if kind == "image" else {"linux/amd64": {}},
        )
        for repository, tag, digest, kind in rows
    )


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

    before = AuditRun.objects.count()
    audit_published_tags.delay(triggered_by="bench")
    deadline = time.monotonic() + 600
    while True:
        run = AuditRun.objects.order_by("-pk").first()
        if AuditRun.objects.count() > before and run.status != AuditRun.Status.RUNNING:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the audit did not finish in 600 s")
        time.sleep(0.2)
    if run.status != AuditRun.Status.SUCCEEDED or run.tags_checked != expected or run.findings_by_type:
        raise SystemExit(f"audit {run.pk}: {run.status} {run.tags_checked} tags {run.findings_by_type} {run.error}")
    return run.tags_checked / (run.finished - run.started).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("docker-registry") is None:
        print("needs wrk and docker-registry (apt-get install wrk docker-registry)", file=sys.stderr)
        return 2
    use_database(
        DATABASE,
        redis_db=6,
        AUDIT_CONCURRENCY=str(CONCURRENCY_PER_WORKER),
        AUDIT_BATCH_SIZE="2500",
        LOG_LEVEL="INFO",  # the workers say "ready." at INFO
    )
    from releases.sandbox.registry import start_registry
    from tests.fixtures.celery_worker import start_worker, worker_environment

    workdir = Path(tempfile.mkdtemp(prefix="audit-sharded-", dir=_default_workdir()))
    registry = start_registry(workdir / "registry", {"log": {"level": "warn"}})
    workers = []
    print(f"registry {registry.url}, {os.cpu_count()} CPUs")
    try:
        database = workdir / "expected.sqlite3"
        total = populate(registry.host, database)
        push_latest(registry.host, database)
        script = workdir / "tags.lua"
        write_wrk_script(database, script)
        for number in range(2):
            env = worker_environment({})
            workers.append(
                start_worker(env, workdir / f"worker{number}.log", queues=("audits",), concurrency=1, name=f"a{number}")
            )

        # (c) first: a run over 1,000 tags (10 repositories' latest too), then the rest recorded
        record_published(registry.host, database, 0, 1000)
        small_rate = audit_once(1000 + REPOSITORIES)
        small_peaks = worker_peaks(workers)
        record_published(registry.host, database, 1000, total - 1000)
        run_wrk(registry.url, registry.process.pid, script, 2)  # warm-up

        audits, wrks = [], []
        for round_number in range(args.rounds):
            order = ["audit", "wrk"] if round_number % 2 == 0 else ["wrk", "audit"]
            for who in order:
                if who == "audit":
                    audits.append(audit_once(total + REPOSITORIES))
                else:
                    wrks.append(run_wrk(registry.url, registry.process.pid, script, args.wrk_seconds).rate)
            print(f"  round {round_number + 1}: sharded audit {audits[-1]:5.0f} tags/s   wrk {wrks[-1]:5.0f} req/s")
        large_peaks = worker_peaks(workers)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    audit_rate, wrk_rate = statistics.median(audits), statistics.median(wrks)
    ratio = audit_rate / wrk_rate
    ok_rate = ratio >= 0.8
    print(
        f"(a) sharded audit of {total + REPOSITORIES:,} tags, 2 workers x {CONCURRENCY_PER_WORKER} connections, "
        f"batches of 2,500: {audit_rate:.0f} tags/s (a 1,100-tag run: {small_rate:.0f} tags/s)"
    )
    print(f"(b) wrk -t2 -c{CONCURRENCY} GET of the same manifests: {wrk_rate:.0f} req/s")
    print(f"    audit/wrk {ratio:.2f}x (goal >= 0.8x) {'OK' if ok_rate else 'MISSED'}")
    growth = max(large - small for small, large in zip(small_peaks, large_peaks, strict=True))
    ok_rss = growth < 8
    print(
        f"(c) worker processes' peak RSS after 1,100 tags {', '.join(f'{m:.1f}' for m in small_peaks)} MiB, "
        f"after 10,100-tag runs {', '.join(f'{m:.1f}' for m in large_peaks)} MiB: "
        f"{growth:+.1f} MiB at most (goal < 8 MiB: flat) {'OK' if ok_rss else 'MISSED'}"
    )
    return 0 if ok_rate and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
