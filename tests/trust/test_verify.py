"""``/api/v1/verify/`` (GET one, POST a batch) and ``manage.py verify``: the same use case, the
database alone."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from releases.models import ApiToken, AuditFinding
from releases.trust.withdrawal import withdraw_release
from tests.fixtures.factories import digest_of

from .conftest import ours, publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def test_verify_answers_release_artifact_signature_attestations_findings_and_withdrawal(api, signing):
    release = publish("1.0.0", key_id=signing)
    platform = release.platform(release.backend, "linux/arm64")
    AuditFinding.objects.create(
        type=AuditFinding.Type.MISMATCH,
        severity=AuditFinding.Severity.CRITICAL,
        repository=ours("threek8s-backend"),
        tag="1.0.0",
        artifact=ours("threek8s-backend", ":1.0.0"),
        docker_image=release.backend,
        expected=release.backend.digest,
        actual=digest_of("moved"),
        last_seen=timezone.now(),
    )
    withdraw_release("1.0.0", reason="leaks a token in its logs", actor="alice")
    body = api.get("/api/v1/verify/", {"image": ours("threek8s-backend", f"@{platform}")}).json()
    assert body["ours"] is True and body["verified"] is False
    assert body["problems"] == ["withdrawn: release 1.0.0 was withdrawn (leaks a token in its logs)"]
    assert body["artifact"] | {} == {
        "kind": "platform",
        "component": "backend",
        "repository": ours("threek8s-backend"),
        "tag": "1.0.0",
        "digest": platform,
        "index_digest": release.backend.digest,
        "platform": "linux/arm64",
        "platforms": None,
        "pinned": ours("threek8s-backend", f":1.0.0@{platform}"),
        "state": "available",
    }
    assert body["release"]["version"] == "1.0.0" and body["release"]["state"] == "published"
    assert body["signature"] == {
        "signed": True,
        "trusted": True,
        "signed_with": signing,
        "signature": release.backend.signatures[platform]["signature"],
    }
    assert body["attestations"] == {"linux/arm64": {"attestation": release.backend.signatures[platform]["attestation"]}}
    assert [finding["type"] for finding in body["findings"]] == ["mismatch"]
    assert body["tag_moved"] is None  # asked by digest: what runs is what we recorded
    assert body["withdrawn"]["reason"] == "leaks a token in its logs" and body["withdrawn"]["by"] == "alice"
    by_tag = api.get("/api/v1/verify/", {"image": ours("threek8s-backend", ":1.0.0")}).json()
    assert by_tag["tag_moved"]["registry_answered"] == digest_of("moved")
    assert by_tag["tag_moved"]["recorded"] == release.backend.digest
    assert any(problem.startswith("tag moved:") for problem in by_tag["problems"])


def test_a_chart_by_tag_and_an_unknown_digest_under_the_namespace(api):
    release = publish("1.0.0")
    chart = api.get("/api/v1/verify/", {"image": f"oci://{release.chart.repository}:1.0.0"}).json()
    assert chart["verified"] is True and chart["artifact"]["kind"] == "chart"
    assert chart["artifact"]["digest"] == release.chart.digest
    stranger = digest_of("stranger")
    unknown = api.get("/api/v1/verify/", {"image": ours("threek8s-backend", f"@{stranger}")}).json()
    assert unknown == {
        "reference": ours("threek8s-backend", f"@{stranger}"),
        "ours": False,
        "verified": False,
        "problems": [f"unknown: we never published {stranger} in {ours('threek8s-backend')}"],
        "repository": ours("threek8s-backend"),
        "tag": None,
        "digest": stranger,
    }


def test_a_reference_that_does_not_parse_gets_400_naming_the_problem(api):
    response = api.get("/api/v1/verify/", {"image": "Bad/Name:1"})
    assert response.status_code == 400
    assert "must be lowercase" in response.json()["image"][0]
    assert api.get("/api/v1/verify/").status_code == 400


def verified(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("release_registry_verified_references_total", {"outcome": outcome}) or 0.0


def test_the_batch_answers_each_reference_in_order_and_refuses_past_the_cap(api, settings):
    publish("1.0.0")
    batch = [ours("threek8s-backend", ":1.0.0"), "busybox", ours("threek8s-frontend", ":2.0.0")]
    before = (verified("verified"), verified("refused"))
    body = api.post("/api/v1/verify/", batch, format="json").json()
    assert (verified("verified"), verified("refused")) == (before[0] + 1, before[1] + 2)
    assert body["count"] == 3
    assert [(r["reference"], r["verified"]) for r in body["results"]] == [
        (batch[0], True),
        ("busybox", False),
        (batch[2], False),
    ]
    assert api.post("/api/v1/verify/", {"images": batch}, format="json").json()["count"] == 3
    settings.VERIFY_BATCH_MAX = 2
    refused = api.post("/api/v1/verify/", batch, format="json")
    assert refused.status_code == 400 and "at most 2 (VERIFY_BATCH_MAX)" in refused.json()["images"][0]
    settings.VERIFY_BATCH_MAX = 200
    bad = api.post("/api/v1/verify/", ["busybox", "", "A:b"], format="json")
    assert bad.status_code == 400 and len(bad.json()["images"]) == 2  # every problem at once
    assert api.post("/api/v1/verify/", {"nope": 1}, format="json").status_code == 400


def test_the_batch_costs_the_same_queries_for_one_reference_and_for_a_hundred(api, django_assert_num_queries):
    for minor in range(5):
        publish(f"1.{minor}.0")
    one = [ours("threek8s-backend", ":1.0.0")]
    many = [
        ours(name, f":1.{minor}.{patch}")
        for name in ("threek8s-backend", "threek8s-frontend")
        for minor in range(5)
        for patch in range(10)
    ]
    with django_assert_num_queries(2) as captured:  # images, charts (each with withdrawal and findings)
        api.post("/api/v1/verify/", one, format="json")
    with django_assert_num_queries(len(captured)):
        response = api.post("/api/v1/verify/", many, format="json")
    assert sum(r["verified"] for r in response.json()["results"]) == 10


def test_verify_reads_like_the_other_reads(api, settings):
    settings.API_READS_PUBLIC = False
    assert api.get("/api/v1/verify/", {"image": "busybox"}).status_code in (401, 403)
    assert api.post("/api/v1/verify/", ["busybox"], format="json").status_code in (401, 403)
    token = ApiToken(name="reader", scope=ApiToken.Scope.READ)
    secret = token.issue()
    token.save()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.post("/api/v1/verify/", ["busybox"], format="json").status_code == 200  # a read, even by POST
    assert api.get("/api/v1/verify/", {"image": "busybox"}).status_code == 200


def test_the_command_exits_0_only_when_every_reference_is_verified(signing):
    signed = publish("1.0.0", key_id=signing)
    publish("1.1.0")  # unsigned while a key is configured
    out = StringIO()
    call_command("verify", ours("threek8s-backend", ":1.0.0"), signed.chart.digest, stdout=out)
    assert out.getvalue().count("ok ") == 2
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "verify",
            ours("threek8s-backend", ":1.0.0"),
            ours("threek8s-backend", ":1.1.0"),
            "nginx",
            "X:",
            stdout=out,
            stderr=err,
        )
    assert exited.value.code == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"ok       {ours('threek8s-backend', ':1.0.0')}: release 1.0.0 backend index")
    assert "unsigned: no signature is recorded" in lines[1]
    assert "not ours: outside" in lines[2]
    assert "does not parse" in lines[3]
    assert "3 of 4 reference(s) refused" in err.getvalue()
