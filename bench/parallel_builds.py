"""Two releases published by one worker with one Docker engine, then by two workers with an
engine each: the build lock is per engine (``releases.database.locks.engine_lock``), so the second set-up
builds two images at once.

Run: ``.venv/bin/python -m bench.parallel_builds [--quick]`` (about 4 minutes, as root: it starts its
own dockerds). Each scenario gets fresh engines (no build cache) and a fresh registry (no blob to
reuse); its own PostgreSQL database (``bench_parallel_builds``, recreated) and Redis database 5; the sample
(``examples/``) is built for linux/amd64 and linux/arm64 (vfs driver) and its chart published. The
set-up is ``bench/_release_harness.py``'s, shared with ``bench/publish_signing.py``.
Goal: two engines publish both releases >= 1.4x faster (wall clock, publish to both published).
Quick mode: one release per set-up, linux/amd64 only.
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _release_harness as harness  # noqa: E402
from bench._database import use_database  # noqa: E402
from bench.figures import Figure, Goal, main  # noqa: E402

GOAL = 1.4


def scenario(
    name: str, engines: int, versions: list[str], workdir: Path, source_url: str, commits, helm, extra_env
) -> float:
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
                    extra_env=extra_env,
                )
            )
        elapsed = harness.publish_and_wait(name, versions, commits)
    print(f"{name}: {len(versions)} releases published in {elapsed:.1f} s")
    return elapsed


def run(quick: bool) -> list[Figure]:
    helm = harness.require_root_and_helm()
    # quick: one platform; the ratio means nothing then, the code paths are the same
    use_database("parallel_builds", redis_db=5, **({"IMAGE_PLATFORMS": "linux/amd64"} if quick else {}))
    extra_env = {"IMAGE_PLATFORMS": "linux/amd64"} if quick else {}
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        workdir = Path(tmp)
        # quick: one release each (its two images still build on both engines of the second set-up)
        first, second = (["2.0.0"], ["3.0.0"]) if quick else (["2.0.0", "2.1.0"], ["3.0.0", "3.1.0"])
        source_url, commits = harness.sample_source(workdir, first + second)
        common = (source_url, commits, helm, extra_env)
        one = scenario("one worker, one engine", 1, first, workdir / "one", *common)
        two = scenario("two workers, two engines", 2, second, workdir / "two", *common)
    what = (
        "one release (two images, one platform, and a chart)"
        if quick
        else ("two releases (four images, two platforms each, and two charts)")
    )
    return [
        Figure(
            f"{what} published, wall clock: one worker with one engine / two workers with an engine each",
            one,
            "s",
            two,
            Goal(">=", GOAL),
        )
    ]


if __name__ == "__main__":
    main(run)
