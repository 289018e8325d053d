"""The admission and verify decisions: pure functions over a parsed review (or reference), what
the database holds about it (read once by ``gather``), and the policy the settings make."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from releases.choices import ReleaseState
from releases.models import AuditFinding
from releases.trust.admission import MalformedReview, parse_review
from releases.trust.decisions import Policy, assess, judge_review, parse_all
from releases.trust.records import Records, gather
from releases.trust.references import parse_reference
from tests.fixtures.factories import digest_of

from .conftest import deployment, ours, publish, review

pytestmark = pytest.mark.django_db


def policy(**overrides) -> Policy:
    return Policy(namespace=settings.REGISTRY_NAMESPACE, **overrides)


def decide(document: dict, the_policy: Policy | None = None, *, pin: bool = False):
    the_policy = the_policy or policy()
    request = parse_review(document)
    parsed = parse_all(image.reference for image in request.images)
    records = gather([p for p in parsed.values() if not isinstance(p, Exception)], namespace=the_policy.namespace)
    return judge_review(request, parsed, records, the_policy, pin=pin)


def verdict(text: str, the_policy: Policy | None = None):
    the_policy = the_policy or policy()
    reference = parse_reference(text, bare_digest=True, oci_scheme=True)
    return assess(reference, gather([reference], namespace=the_policy.namespace, charts=True), the_policy)


def test_our_published_images_by_tag_by_index_digest_and_by_platform_digest_are_admitted():
    release = publish("1.0.0")
    decision = decide(
        review(
            deployment(
                ours("threek8s-backend", ":1.0.0"),
                ours("threek8s-frontend", f"@{release.frontend.digest}"),
                ours("threek8s-backend", f"@{release.platform(release.backend, 'linux/arm64')}"),
                init=(ours("threek8s-frontend", f":1.0.0@{release.frontend.digest}"),),
            )
        )
    )
    assert decision.allowed and decision.outcome == "allowed", decision.message
    assert not decision.warnings


def test_unknown_tag_and_unknown_digest_under_the_namespace_are_refused_naming_each_image():
    publish("1.0.0")
    stranger = digest_of("never published")
    decision = decide(review(deployment(ours("threek8s-backend", ":9.9.9"), ours("threek8s-frontend", f"@{stranger}"))))
    assert not decision.allowed and decision.outcome == "refused"
    assert f"containers[0] (c0): {ours('threek8s-backend', ':9.9.9')}: unknown: we never published" in decision.message
    assert (
        f"containers[1] (c1): {ours('threek8s-frontend', '@' + stranger)}: unknown: we never published {stranger}"
        in (decision.message)
    )


def test_a_digest_of_ours_under_another_repository_is_not_ours_there():
    release = publish("1.0.0")
    decision = decide(review(deployment(ours("threek8s-frontend", f"@{release.backend.digest}"))))
    assert not decision.allowed
    assert f"is ours, but in {ours('threek8s-backend')}" in decision.message


def test_a_tag_and_digest_that_disagree_are_refused():
    one, two = publish("1.0.0"), publish("1.1.0")
    decision = decide(review(deployment(ours("threek8s-backend", f":1.0.0@{two.backend.digest}"))))
    assert not decision.allowed
    assert f"tag and digest disagree: 1.0.0 is recorded as {one.backend.digest}" in decision.message


def test_images_of_a_release_that_is_not_published_are_refused():
    publish("1.0.0", state=ReleaseState.FAILED)
    decision = decide(review(deployment(ours("threek8s-backend", ":1.0.0"))))
    assert not decision.allowed
    assert "not published: release 1.0.0 is failed" in decision.message


def test_latest_and_no_tag_resolve_to_the_highest_published_version_never_a_prerelease():
    publish("1.0.0")
    newest = publish("1.2.0")
    publish("1.10.0-rc.1")
    document = review(deployment(ours("threek8s-backend"), ours("threek8s-frontend", ":latest")))
    decision = decide(document, pin=True)
    assert decision.allowed
    pins = {op["path"]: op["value"] for op in decision.patch}
    assert pins == {
        "/spec/template/spec/containers/0/image": ours("threek8s-backend", f":latest@{newest.backend.digest}"),
        "/spec/template/spec/containers/1/image": ours("threek8s-frontend", f":latest@{newest.frontend.digest}"),
    }


def test_unsigned_images_are_refused_only_where_signing_is_configured(signing):
    publish("1.0.0")
    signed = publish("1.1.0", key_id=signing)
    required = policy(signing_required=True, trusted_keys=frozenset({signing}))
    decision = decide(
        review(deployment(ours("threek8s-backend", ":1.0.0"), ours("threek8s-backend", ":1.1.0"))), required
    )
    assert not decision.allowed
    unsigned = f"{ours('threek8s-backend', ':1.0.0')}: unsigned: no signature is recorded for"
    assert unsigned in decision.message
    assert "1.1.0" not in decision.message
    platform = signed.platform(signed.backend, "linux/arm64")
    assert decide(review(deployment(ours("threek8s-backend", f"@{platform}"))), required).allowed
    assert decide(review(deployment(ours("threek8s-backend", ":1.0.0"))), policy()).allowed


def test_a_signature_by_a_key_no_longer_trusted_is_unsigned(signing):
    publish("1.0.0", key_id="f" * 64)
    required = policy(signing_required=True, trusted_keys=frozenset({signing}))
    decision = decide(review(deployment(ours("threek8s-backend", ":1.0.0"))), required)
    assert "its signature is by a key we do not trust" in decision.message


def test_a_tag_the_registry_was_seen_answering_another_digest_for_is_refused_by_tag_but_not_by_digest():
    release = publish("1.0.0")
    moved_to = digest_of("someone else's image")
    AuditFinding.objects.create(
        type=AuditFinding.Type.MISMATCH,
        severity=AuditFinding.Severity.CRITICAL,
        repository=ours("threek8s-backend"),
        tag="1.0.0",
        artifact=ours("threek8s-backend", ":1.0.0"),
        docker_image=release.backend,
        expected=release.backend.digest,
        actual=moved_to,
        last_seen=timezone.now(),
    )
    by_tag = decide(review(deployment(ours("threek8s-backend", ":1.0.0"))))
    assert not by_tag.allowed
    assert f"tag moved: the registry was last seen answering {moved_to} for 1.0.0" in by_tag.message
    assert decide(review(deployment(ours("threek8s-backend", f":1.0.0@{release.backend.digest}")))).allowed


def test_latest_behind_in_the_registry_is_a_moved_tag():
    release = publish("1.0.0")
    AuditFinding.objects.create(
        type=AuditFinding.Type.LATEST_BEHIND,
        severity=AuditFinding.Severity.WARNING,
        repository=ours("threek8s-frontend"),
        tag="latest",
        artifact=ours("threek8s-frontend", ":latest"),
        expected=release.frontend.digest,
        actual=digest_of("old"),
        last_seen=timezone.now(),
    )
    assert "tag moved" in decide(review(deployment(ours("threek8s-frontend")))).message


def test_images_outside_the_namespace_need_admission_allowed_images_as_written_or_fully_qualified():
    document = review(deployment("busybox:1.36", "registry.k8s.io/pause:3.9", "nginx"))
    refused = decide(document)
    assert not refused.allowed
    assert "busybox:1.36: outside" in refused.message and "ADMISSION_ALLOWED_IMAGES" in refused.message
    allowed = decide(document, policy(allowed_images=("docker.io/library/*", "registry.k8s.io/pause:*")))
    assert allowed.allowed, allowed.message
    partly = decide(document, policy(allowed_images=("busybox:*",)))
    assert "busybox" not in partly.message and "nginx: outside" in partly.message


def test_a_container_without_image_or_with_one_that_does_not_parse_is_refused():
    decision = decide(review(deployment("", "Bad/Image:1")))
    assert "containers[0] (c0): (none): the container has no image" in decision.message
    assert "containers[1] (c1): Bad/Image:1: does not parse" in decision.message


def test_the_chart_is_not_an_image():
    release = publish("1.0.0")
    decision = decide(review(deployment(f"{release.chart.repository}@{release.chart.digest}")))
    assert not decision.allowed


def test_a_warn_namespace_answers_allowed_with_the_refusals_as_warnings():
    document = review(deployment(ours("threek8s-backend", ":9.9.9"), "busybox"), namespace="staging")
    decision = decide(document, policy(warn_namespaces=("stag*",)))
    assert decision.allowed and decision.outcome == "warned"
    assert len(decision.warnings) == 2
    assert "unknown: we never published" in decision.warnings[0]
    assert not decide(document, policy(warn_namespaces=("prod",))).allowed


def test_dry_run_reviews_are_judged_alike():
    publish("1.0.0")
    for image, allowed in ((ours("threek8s-backend", ":1.0.0"), True), (ours("threek8s-backend", ":2.0.0"), False)):
        assert decide(review(deployment(image), dry_run=True)).allowed is allowed


def test_on_update_an_image_the_old_object_already_ran_is_warned_about_not_refused():
    publish("1.0.0")
    old = deployment(ours("threek8s-backend", ":0.9.0"))
    same = decide(review(deployment(ours("threek8s-backend", ":0.9.0")), operation="UPDATE", old=old))
    assert same.allowed and "already running" in same.warnings[0]
    changed = decide(review(deployment(ours("threek8s-backend", ":0.9.1")), operation="UPDATE", old=old))
    assert not changed.allowed


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        ("Pod", {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "IMAGE"}]}}),
        (
            "CronJob",
            {
                "kind": "CronJob",
                "metadata": {"name": "nightly"},
                "spec": {
                    "schedule": "@daily",
                    "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "IMAGE"}]}}}},
                },
            },
        ),
        ("Job", {"kind": "Job", "spec": {"template": {"spec": {"initContainers": [{"name": "a", "image": "IMAGE"}]}}}}),
        (
            "Pod",
            {"kind": "Pod", "spec": {"containers": [], "ephemeralContainers": [{"name": "debug", "image": "IMAGE"}]}},
        ),
        ("StatefulSet", deployment("IMAGE") | {"kind": "StatefulSet"}),
        ("DaemonSet", deployment("IMAGE") | {"kind": "DaemonSet"}),
        ("ReplicaSet", deployment("IMAGE") | {"kind": "ReplicaSet"}),
    ],
)
def test_every_pod_carrying_kind_is_inspected(kind, obj):
    import json

    bad = json.loads(json.dumps(obj).replace("IMAGE", ours("threek8s-backend", ":6.6.6")))
    decision = decide(review(bad, kind=kind))
    assert not decision.allowed, kind
    assert "unknown" in decision.message


def test_kinds_without_a_pod_spec_and_deletes_are_allowed():
    configmap = {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"image": "evil"}}
    assert decide(review(configmap, kind="ConfigMap")).allowed
    assert decide(review(None, kind="Deployment", operation="DELETE", old=deployment("evil"))).allowed


def test_verify_says_what_an_artifact_is_and_whether_it_is_verified(signing):
    release = publish("1.0.0", key_id=signing)
    required = policy(signing_required=True, trusted_keys=frozenset({signing}))
    platform = release.platform(release.backend, "linux/amd64")
    for text, kind in (
        (ours("threek8s-backend", ":1.0.0"), "index"),
        (ours("threek8s-backend", f"@{platform}"), "platform"),
        (platform, "platform"),
        (f"oci://{release.chart.repository}:1.0.0", "chart"),
        (release.chart.digest, "chart"),
    ):
        result = verdict(text, required)
        assert result.verified, (text, result.problems)
        assert result.record.kind == kind and result.record.release == "1.0.0"
        assert result.signed
    result = verdict(ours("threek8s-backend", f"@{platform}"), required)
    assert result.record.platform == "linux/amd64" and result.record.component == "backend"
    assert result.record.attestations == {"linux/amd64": release.backend.signatures[platform]["attestation"]}
    outside = verdict("busybox:1.36")
    assert not outside.ours and outside.problems == (f"not ours: outside {settings.REGISTRY_NAMESPACE}",)
    unknown = verdict(digest_of("nothing"))
    assert not unknown.ours and "unknown" in unknown.problems[0]


def test_records_are_empty_for_references_outside_the_namespace(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert gather([parse_reference("busybox")], namespace=settings.REGISTRY_NAMESPACE).artifacts == {}
    assert Records().resolve(parse_reference(ours("x", ":1"))) is None


def test_open_findings_are_reported_with_the_artifact():
    release = publish("1.0.0")
    AuditFinding.objects.create(
        type=AuditFinding.Type.SIGNATURE_MISSING,
        severity=AuditFinding.Severity.CRITICAL,
        repository=ours("threek8s-backend"),
        tag=f"sha256-{release.backend.digest[7:]}.sig",
        artifact=ours("threek8s-backend", ":1.0.0"),
        docker_image=release.backend,
        last_seen=timezone.now() - timedelta(minutes=1),
    )
    result = verdict(ours("threek8s-backend", ":1.0.0"))
    assert [finding.type for finding in result.findings] == ["signature_missing"]
    assert result.verified  # a finding is reported; the signature we recorded still stands


def test_a_withdrawn_release_is_refused_by_tag_and_by_digest_naming_the_reason_and_latest_moves_back():
    from releases.trust.withdrawal import restore_release, withdraw_release

    older = publish("1.0.0")
    bad = publish("1.1.0")
    withdraw_release("1.1.0", reason="CVE-2026-1234 in the backend", actor="alice")
    for image in (
        ours("threek8s-backend", ":1.1.0"),
        ours("threek8s-backend", f"@{bad.backend.digest}"),
        ours("threek8s-backend", f"@{bad.platform(bad.backend)}"),
    ):
        decision = decide(review(deployment(image)))
        assert not decision.allowed
        assert "withdrawn: release 1.1.0 was withdrawn (CVE-2026-1234 in the backend)" in decision.message
    latest = decide(review(deployment(ours("threek8s-backend"))), pin=True)
    assert latest.allowed
    assert latest.patch[0]["value"] == ours("threek8s-backend", f":latest@{older.backend.digest}")
    result = verdict(ours("threek8s-backend", ":1.1.0"))
    assert result.ours and not result.verified
    assert (result.withdrawal.reason, result.withdrawal.by) == ("CVE-2026-1234 in the backend", "alice")
    restore_release("1.1.0", reason="false alarm", actor="bob")
    assert decide(review(deployment(ours("threek8s-backend", ":1.1.0")))).allowed
    assert verdict(ours("threek8s-backend")).record.tag == "1.1.0"


def test_when_every_version_is_withdrawn_latest_names_nothing_we_stand_behind():
    from releases.trust.withdrawal import withdraw_release

    publish("1.0.0")
    withdraw_release("1.0.0", reason="bad build", actor="alice")
    decision = decide(review(deployment(ours("threek8s-frontend", ":latest"))))
    assert not decision.allowed
    assert "is published and not withdrawn, so latest names nothing we stand behind" in decision.message


def test_latest_is_refused_while_a_withdrawal_is_still_moving_it_in_the_registry():
    from releases.choices import LatestTagState
    from releases.models import LatestTag

    release = publish("1.0.0")
    publish("1.1.0")
    LatestTag.record(
        release.backend.registry, "threek8s-backend", LatestTagState.MOVING, reason="the registry answered 503"
    )
    decision = decide(review(deployment(ours("threek8s-backend"), ours("threek8s-frontend"))), pin=True)
    assert not decision.allowed
    assert "threek8s-backend: tag moved: latest is not yet where the last withdrawal or restore puts it" in (
        decision.message
    )
    assert "moving: the registry answered 503" in decision.message
    assert "threek8s-frontend:" not in decision.message
    assert decide(review(deployment(ours("threek8s-backend", ":1.1.0")))).allowed
    LatestTag.record(release.backend.registry, "threek8s-backend", LatestTagState.CURRENT, version="1.1.0")
    assert decide(review(deployment(ours("threek8s-backend")))).allowed


def test_a_malformed_container_is_named_by_its_path_and_a_good_one_by_its_pointer():
    document = review(deployment("busybox", init=("busybox",)))
    containers = document["request"]["object"]["spec"]["template"]["spec"]["containers"]
    assert [image.pointer for image in parse_review(document).images] == [
        "/spec/template/spec/containers/0/image",
        "/spec/template/spec/initContainers/0/image",
    ]
    containers.extend(["not an object", {"name": "x", "image": 7}])
    with pytest.raises(MalformedReview) as refused:
        parse_review(document)
    assert refused.value.problems == [
        "request.object.spec.template.spec.containers[1] is not an object",
        "request.object.spec.template.spec.containers[2].image is not a string",
    ]
