"""Admission and verify at 10,000 releases, under gunicorn, measured with ``wrk``.

(a) ``POST /admission/validate/`` of an AdmissionReview of a Deployment with three containers
(one of our images by tag, one by a platform manifest's digest, an allowed outside image) as a
ratio to the trivial DRF endpoint ``GET /api/v1/health/`` in the same run (goal >= 0.5x), and the
review's p99 (goal < 25 ms); the queries one review costs (the same at any number of containers,
``tests/trust/test_admission_http.py``). (b) ``POST /api/v1/verify/`` of 100 references in one
batch against one reference (goal <= 5x the time of one).

Rows are seeded before they are published (releases ``publishing`` while their artifacts are
written, then published in one UPDATE), as the pipeline does; the immutability triggers stay on.
Its own PostgreSQL database (``<prefix>admission``) and Redis database 3. Full: 10,000 releases, 5
rounds of 10 s, 3 gunicorn workers. Quick mode: 200 releases, one round of 1 s, 2 workers.

Run: .venv/bin/python -m bench.admission [--quick]
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._database import use_database  # noqa: E402
from bench._http import gunicorn, post_script, wrk  # noqa: E402
from bench._tools import require  # noqa: E402
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, ratio_figure  # noqa: E402

TOKEN = "bench-admission-token-0123456789"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def seed(count: int) -> None:
    """``count`` published releases (images with both platforms' manifests), and what the audit and
    withdrawals leave behind: open findings and a few withdrawn releases."""
    from django.utils import timezone

    from bench import _seed
    from releases.choices import WithdrawalAction
    from releases.models import AuditFinding, DockerImage, ReleaseVersion, ReleaseWithdrawal

    digest = _seed.digest_of
    now = timezone.now()
    _seed.published_releases(count, platforms=("linux/amd64", "linux/arm64"))
    # what the audit and withdrawals leave behind: open findings and a few withdrawn releases
    namespace = DockerImage._meta.get_field("registry").default()
    AuditFinding.objects.bulk_create(
        AuditFinding(
            type=AuditFinding.Type.MISMATCH,
            severity=AuditFinding.Severity.CRITICAL,
            repository=f"{namespace}/threek8s-backend",
            tag=f"1.0.{i}",
            artifact=f"{namespace}/threek8s-backend:1.0.{i}",
            expected=digest(f"e{i}"),
            actual=digest(f"a{i}"),
            last_seen=now,
        )
        for i in range(min(100, count))
    )
    for release in ReleaseVersion.objects.order_by("pk")[: max(1, count // 1000)]:
        ReleaseWithdrawal.objects.create(
            release=release, sequence=1, action=WithdrawalAction.WITHDRAW, reason="bench", actor="bench"
        )


def review_body(count: int) -> dict:
    from django.conf import settings

    from releases.models import DockerImage

    namespace = settings.REGISTRY_NAMESPACE
    i = count // 2
    version = f"{i // 10000 + 1}.{(i // 100) % 100}.{i % 100}"
    frontend = DockerImage.objects.get(name="threek8s-frontend", tag=version)
    platform = frontend.platform_digests["linux/amd64"]["digest"]
    containers = [
        {"name": "backend", "image": f"{namespace}/threek8s-backend:{version}"},
        {"name": "frontend", "image": f"{namespace}/threek8s-frontend@{platform}"},
        {"name": "proxy", "image": "docker.io/library/busybox:1.36"},
    ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "threek8s", "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "threek8s"}},
            "template": {"metadata": {"labels": {"app": "threek8s"}}, "spec": {"containers": containers}},
        },
    }
    gvk = {"group": "apps", "version": "v1", "kind": "Deployment"}
    gvr = {"group": "apps", "version": "v1", "resource": "deployments"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b0e4b4a4-4c6e-4d1c-9c55-0d1e4f1a2b3c",
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": "threek8s",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
            "object": deployment,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def references(count: int, many: int) -> list[str]:
    from django.conf import settings

    namespace = settings.REGISTRY_NAMESPACE
    found = []
    for i in range(many):
        j = (i * 97) % count
        version = f"{j // 10000 + 1}.{(j // 100) % 100}.{j % 100}"
        found.append(f"{namespace}/threek8s-{'backend' if i % 2 else 'frontend'}:{version}")
    return found


def check_answers(base: str, review: dict, batch: list[str]) -> int:
    """The review is answered allowed with its uid and the batch verified, before anything is timed;
    returns the queries one review costs (in-process, same database)."""
    import httpx
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    answer = httpx.post(
        base + "/admission/validate/", json=review, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ).json()
    assert answer["response"] == {"uid": review["request"]["uid"], "allowed": True}, answer
    results = httpx.post(base + "/api/v1/verify/", json=batch, timeout=30).json()["results"]
    assert [result["reference"] for result in results] == batch
    assert all(result["ours"] for result in results), [r["problems"] for r in results if not r["ours"]][:3]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="127.0.0.1")
    with CaptureQueriesContext(connection) as queries:
        client.post("/admission/validate/", data=json.dumps(review), content_type="application/json")
    return len(queries)


def run(quick: bool) -> list[Figure]:
    releases, seconds, rounds, workers = (200, 1, 1, 2) if quick else (10_000, 10, EDGE_ROUNDS, 3)
    require("wrk")
    use_database(
        "admission",
        redis_db=3,
        ADMISSION_TOKEN=TOKEN,
        ADMISSION_ALLOWED_IMAGES="docker.io/library/busybox:*",
        API_READS_PUBLIC="true",
    )
    started = time.monotonic()
    seed(releases)
    from bench import _seed

    _seed.analyze()  # what autovacuum does to a table that grew this much
    print(f"seeded {releases} releases in {time.monotonic() - started:.1f} s")
    review = review_body(releases)
    batch = references(releases, 100)
    health, validate, validate_p99, one, hundred = [], [], [], [], []
    with gunicorn(workers) as base, tempfile.TemporaryDirectory() as scripts:
        queries = check_answers(base, review, batch)
        review_script = post_script(Path(scripts) / "review.lua", review, TOKEN)
        one_script = post_script(Path(scripts) / "one.lua", batch[:1])
        hundred_script = post_script(Path(scripts) / "hundred.lua", batch)
        warm = min(2, seconds)
        wrk(base + "/api/v1/health/", warm)
        wrk(base + "/admission/validate/", warm, review_script)
        wrk(base + "/api/v1/verify/", warm, hundred_script)
        for _ in range(rounds):
            health.append(wrk(base + "/api/v1/health/", seconds)[0])
            rps, p99 = wrk(base + "/admission/validate/", seconds, review_script)
            validate.append(rps)
            validate_p99.append(p99)
            one.append(wrk(base + "/api/v1/verify/", seconds, one_script)[0])
            hundred.append(wrk(base + "/api/v1/verify/", seconds, hundred_script)[0])
    # The time of one batch of 100 against one of 1 is the inverse of their request rates.
    return [
        ratio_figure(
            f"{releases:,} releases, gunicorn ({workers} workers), wrk: POST admission/validate/ of a "
            f"Deployment with 3 containers ({queries} queries per review) / trivial DRF health/",
            validate,
            health,
            "req/s",
            Goal(">=", 0.5),
        ),
        Figure(
            "the review's p99 latency (median of the rounds)",
            statistics.median(validate_p99),
            "ms",
            goal=Goal("<", 25, " ms"),
            rounds=tuple(validate_p99),
        ),
        ratio_figure(
            "POST verify/: the time of a batch of 100 references / the time of one (req/s of one / req/s of 100)",
            one,
            hundred,
            "req/s",
            Goal("<=", 5),
        ),
    ]


if __name__ == "__main__":
    main(run)
