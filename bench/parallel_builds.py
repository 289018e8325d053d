"""Two releases published by one worker with one Docker engine, then by two workers with an
engine each: the build lock is per engine (``releases.database.locks.engine_lock``), so the second set-up
builds two images at once.

Run: ``.venv/bin/python -m bench.parallel_builds [--quick]`` (about 4 minutes, as root: it starts its
own dockerds). Each scenario gets fresh engines (no build cache) and a fresh registry (no blob to
reuse); its own PostgreSQL database (``bench_parallel_builds``, recreated) and Redis database 5; the sample
(``examples/``) is built for linux/amd64 and linux/arm64 (vfs driver) and its chart published. The
set-up is ``bench/_release_harness.py``'s, shared with ``bench/publish_signing.py``.
Goal: two engines publish both releases >= 1.4x faster (wall clock, publish to both published);
``EDGE_ROUNDS`` rounds, the order alternating, the median of the rounds' ratios judged.
Quick mode: one release per set-up, linux/amd64 only, one round.
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _release_harness as harness  # noqa: E402
from bench._database import use_database  # noqa: E402
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, ratio_figure, rounds  # noqa: E402

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
    count = rounds(quick, EDGE_ROUNDS)
    # quick: one release each (its two images still build on both engines of the second set-up)
    per_side = 1 if quick else 2
    plan = [
        ([f"2.{number}.{patch}" for patch in range(per_side)], [f"3.{number}.{patch}" for patch in range(per_side)])
        for number in range(count)
    ]
    one, two = [], []
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        workdir = Path(tmp)
        source_url, commits = harness.sample_source(workdir, [v for first, second in plan for v in first + second])
        common = (source_url, commits, helm, extra_env)
        for number, (first, second) in enumerate(plan):
            sides = [
                (one, "one worker, one engine", 1, first, workdir / f"one-{number}"),
                (two, "two workers, two engines", 2, second, workdir / f"two-{number}"),
            ]
            for into, name, engines, versions, directory in sides if number % 2 == 0 else sides[::-1]:
                into.append(scenario(name, engines, versions, directory, *common))
    what = (
        "one release (two images, one platform, and a chart)"
        if quick
        else ("two releases (four images, two platforms each, and two charts)")
    )
    return [
        ratio_figure(
            f"{what} published, wall clock: one worker with one engine / two workers with an engine each",
            one,
            two,
            "s",
            Goal(">=", GOAL),
        )
    ]


if __name__ == "__main__":
    main(run)
