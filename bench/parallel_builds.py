"""Two releases published by one worker with one Docker engine, then by two workers with an
engine each: the build lock is per engine (``releases.database.locks.engine_lock``), so the second set-up
builds two images at once.

Run: ``.venv/bin/python bench/parallel_builds.py`` (about 4 minutes, as root: it starts its own
dockerds). Each scenario gets fresh engines (no build cache) and a fresh registry (no blob to
reuse), its own PostgreSQL database (``bench_parallel``, recreated) and Redis database 5; the sample
(``examples/``) is built for linux/amd64 and linux/arm64 (vfs driver) and its chart published. The
set-up is ``bench/_release_harness.py``'s, shared with ``bench/publish_signing.py``.
Goal: two engines publish both releases >= 1.4x faster (wall clock, publish to both published).
Exit status 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._database import use_database  # noqa: E402

use_database("bench_parallel", redis_db=5)

from bench import _release_harness as harness  # noqa: E402

GOAL = 1.4


def scenario(name: str, engines: int, versions: list[str], workdir: Path, source_url: str, commits, helm) -> float:
    """Publish ``versions`` with ``engines`` workers (one engine each); the wall clock in seconds."""
    workdir.mkdir()
    with harness.sample_registry(workdir) as registry, ExitStack() as running:
        for number in range(engines):
            docker_host = running.enter_context(harness.docker_engine(workdir / f"dockerd{number}", registry))
            # one worker: two processes (orchestration runs beside a build); two workers: one each
            running.enter_context(
                harness.release_worker(
                    registry,
                    docker_host,
                    source_url,
                    helm,
                    workdir,
                    name=f"bench{number}",
                    concurrency=2 if engines == 1 else 1,
                )
            )
        elapsed = harness.publish_and_wait(name, versions, commits)
    print(f"{name}: {len(versions)} releases published in {elapsed:.1f} s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.parse_args()
    helm = harness.require_root_and_helm()
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        workdir = Path(tmp)
        source_url, commits = harness.sample_source(workdir, ["2.0.0", "2.1.0", "3.0.0", "3.1.0"])
        one = scenario("one worker, one engine", 1, ["2.0.0", "2.1.0"], workdir / "one", source_url, commits, helm)
        two = scenario("two workers, two engines", 2, ["3.0.0", "3.1.0"], workdir / "two", source_url, commits, helm)
    ratio = one / two
    verdict = "ok" if ratio >= GOAL else "MISSED"
    print(f"two releases: one engine {one:.1f} s / two engines {two:.1f} s = {ratio:.2f}x (goal >= {GOAL}x) {verdict}")
    sys.exit(0 if ratio >= GOAL else 1)


if __name__ == "__main__":
    main()
