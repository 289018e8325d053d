"""Two releases published by one worker with one Docker engine, then by two workers with an
engine each: the build lock is per engine (``releases.locks.engine_lock``), so the second set-up
builds two images at once.

Run: ``.venv/bin/python bench/parallel_builds.py`` (about 4 minutes, as root: it starts its own
dockerds). Each scenario gets fresh engines (no build cache) and a fresh registry (no blob to
reuse), its own PostgreSQL database (``bench_parallel``, recreated) and Redis database 5; the sample
(``examples/``) is built for linux/amd64 and linux/arm64 (vfs driver) and its chart published.
Goal: two engines publish both releases >= 1.4x faster (wall clock, publish to both published).
Exit status 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATABASE = "bench_parallel"
os.environ.update(
    {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/5",
        "SECRET_KEY": "bench-secret-key",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "LOG_LEVEL": "INFO",
    }
)
GOAL = 1.4


def recreate_database() -> None:
    for sql in (f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)


recreate_database()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from releases import services  # noqa: E402
from releases.choices import ReleaseState  # noqa: E402
from releases.models import ReleaseVersion  # noqa: E402
from releases.oci import RegistryClient  # noqa: E402
from releases.sandbox.registry import start_registry  # noqa: E402
from releases.sandbox.tiny_base import push_multiarch_base_image  # noqa: E402
from tests.fixtures.celery_worker import start_worker, worker_environment  # noqa: E402
from tests.fixtures.dockerd import start_dockerd  # noqa: E402
from tests.fixtures.helm import find_helm  # noqa: E402


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    return subprocess.run(["git", "-C", str(repo), *identity, *args], check=True, capture_output=True, text=True).stdout


def sample_source(workdir: Path, versions: list[str]) -> dict[str, str]:
    """``examples/`` committed once per version (the chart's version follows); version -> commit."""
    repo = workdir / "source"
    shutil.copytree(ROOT / "examples", repo)
    git(repo, "init", "-q", "-b", "main")
    commits = {}
    chart_yaml = repo / "chart" / "Chart.yaml"
    original = chart_yaml.read_text()
    for version in versions:
        chart_yaml.write_text(original.replace("1.0.0", version))
        (repo / "backend" / "VERSION").write_text(version)
        (repo / "frontend" / "VERSION").write_text(version)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"chore: release {version}")
        commits[version] = git(repo, "rev-parse", "HEAD").strip()
    return commits


def scenario(name: str, engines: int, versions: list[str], workdir: Path, source_url: str, commits, helm) -> float:
    """Publish ``versions`` with ``engines`` workers (one engine each); the wall clock in seconds."""
    workdir.mkdir()
    registry = start_registry(workdir / "registry")
    dockerds, workers = [], []
    try:
        with RegistryClient(registry.host) as client:
            base = push_multiarch_base_image(client)
        namespace = f"{registry.host}/bench/threek8s"
        settings.REGISTRY_NAMESPACE = namespace
        for number in range(engines):
            dockerd = start_dockerd(workdir / f"dockerd{number}", [registry.host])
            dockerds.append(dockerd)
            env = worker_environment(
                {
                    "REGISTRY_NAMESPACE": namespace,
                    "SOURCE_REPOSITORY_URL": source_url,
                    "DOCKER_HOST": dockerd.base_url,
                    "BUILD_WORKDIR": str(workdir / f"builds{number}"),
                    "HELM_BIN": helm,
                    "IMAGE_BUILD_ARGS": f"BASE_IMAGE={base.reference}",
                }
            )
            # one worker: two processes (orchestration runs beside a build); two workers: one each
            concurrency = 2 if engines == 1 else 1
            workers.append(
                start_worker(env, workdir / f"worker{number}.log", concurrency=concurrency, name=f"bench{number}")
            )
        releases = [
            services.create_release(version=v, commit_sha=commits[v], pr_number=1, changelog=f"## {v}")
            for v in versions
        ]
        started = time.perf_counter()
        for release in releases:
            services.publish_release(release.pk)
        ended = {ReleaseState.PUBLISHED, ReleaseState.FAILED}
        while True:
            states = dict(ReleaseVersion.objects.filter(version__in=versions).values_list("version", "state"))
            if all(state in ended for state in states.values()):
                break
            if time.perf_counter() - started > 900:
                raise SystemExit(f"{name}: not done after 900 s: {states}")
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        failed = ReleaseVersion.objects.filter(version__in=versions, state=ReleaseState.FAILED)
        if failed:
            raise SystemExit(f"{name}: {[(r.version, r.failure_reason) for r in failed]}")
        print(f"{name}: {len(versions)} releases published in {elapsed:.1f} s")
        return elapsed
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
        for dockerd in dockerds:
            dockerd.cleanup()
        registry.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark starts its own dockerd")
    helm = find_helm()
    if helm is None:
        raise SystemExit("helm is not installed; run bin/install-helm")
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        workdir = Path(tmp)
        commits = sample_source(workdir, ["2.0.0", "2.1.0", "3.0.0", "3.1.0"])
        source_url = f"file://{workdir / 'source'}"
        one = scenario("one worker, one engine", 1, ["2.0.0", "2.1.0"], workdir / "one", source_url, commits, helm)
        two = scenario("two workers, two engines", 2, ["3.0.0", "3.1.0"], workdir / "two", source_url, commits, helm)
    ratio = one / two
    verdict = "ok" if ratio >= GOAL else "MISSED"
    print(f"two releases: one engine {one:.1f} s / two engines {two:.1f} s = {ratio:.2f}x (goal >= {GOAL}x) {verdict}")
    sys.exit(0 if ratio >= GOAL else 1)


if __name__ == "__main__":
    main()
