"""The audit checks the cosign signatures and attestations of every published digest against a real
docker-registry: a deleted ``.sig`` or ``.att`` becomes ``signature_missing``/``attestation_missing``
and restoring it resolves the finding; a signature by another key is ``signature_invalid``; a key
dropped from the trusted keys makes its releases' signatures invalid."""

from __future__ import annotations

import pytest

from releases.audit import content_due
from releases.choices import ChartState, ImageState
from releases.models import AuditFinding
from releases.oci.media_types import OCI_MANIFEST
from releases.pipelines.audit import run_audit
from releases.signing import attestation_tag, sign_image, signature_tag
from releases.tasks import build_image, publish_chart
from tests.pipeline.test_chart_pipeline import chart_repository, chart_source, plan_chart  # noqa: F401
from tests.pipeline.test_chart_pipeline import registry as chart_registry
from tests.pipeline.test_image_pipeline import pipeline, queue_image, registry_client, repository  # noqa: F401
from tests.signing.conftest import make_key_pair

pytestmark = [pytest.mark.django_db, pytest.mark.services]

Type = AuditFinding.Type
SIGNATURE_TYPES = [Type.SIGNATURE_MISSING, Type.SIGNATURE_INVALID, Type.ATTESTATION_MISSING]


@pytest.fixture
def release_key(settings, tmp_path):
    pair = make_key_pair(tmp_path, "release")
    settings.SIGNING_KEY = str(pair.private_path)
    settings.SIGNING_PRIVATE_KEY = pair.private_key
    settings.TRUSTED_PUBLIC_KEYS = []
    return pair


def open_findings() -> dict[tuple[str, str], AuditFinding]:
    return {(f.type, f.tag): f for f in AuditFinding.objects.open()}


def test_deleted_signatures_and_attestations_are_found_and_resolve_when_restored(
    pipeline,  # noqa: F811
    settings,
    release_key,
    tmp_path,
):
    # Given a signed, published image
    image = queue_image(pipeline.backend())
    assert build_image.apply(args=[image.pk]).get() == ImageState.AVAILABLE
    image.refresh_from_db()
    repo = repository(settings)
    amd64 = image.platform_digests["linux/amd64"]["digest"]
    run = run_audit()
    assert open_findings() == {}
    assert run.tags_checked == 2 + 5  # 1.0.0 and latest; 3 .sig and 2 .att

    # When the index's .sig and a platform's .att are deleted from the registry
    with registry_client(settings) as client:
        sig_body = client.get_manifest(repo, signature_tag(image.digest))
        att_body = client.get_manifest(repo, attestation_tag(amd64))
        client.delete_manifest(repo, sig_body[2])
        client.delete_manifest(repo, att_body[2])
    run_audit()

    # Then the next audit opens one finding each, naming what is gone
    findings = open_findings()
    assert set(findings) == {
        (Type.SIGNATURE_MISSING, signature_tag(image.digest)),
        (Type.ATTESTATION_MISSING, attestation_tag(amd64)),
    }
    missing = findings[(Type.SIGNATURE_MISSING, signature_tag(image.digest))]
    assert missing.docker_image_id == image.pk and missing.expected == image.digest
    assert "index" in missing.artifact and "gone" in missing.detail
    assert missing.severity == AuditFinding.Severity.CRITICAL

    # When they are put back, the next audit resolves both
    with registry_client(settings) as client:
        client.put_manifest(repo, signature_tag(image.digest), sig_body[0], sig_body[1])
        client.put_manifest(repo, attestation_tag(amd64), att_body[0], att_body[1])
    run = run_audit()
    assert open_findings() == {}
    assert run.resolved_findings == 2

    # When the .sig holds only another key's signature, it is invalid (verified in full: its digest
    # changed), found by the first run once every run reads the signatures' content
    settings.AUDIT_SIGNATURE_RECHECK_RUNS = 1
    other = make_key_pair(tmp_path, "intruder")
    with registry_client(settings) as client:
        client.delete_manifest(repo, sig_body[2])
        sign_image(client, repo, image.digest, other.private_key, image.repository)
    run_audit()
    (invalid,) = AuditFinding.objects.open()
    assert invalid.type == Type.SIGNATURE_INVALID and "not made by a trusted key" in invalid.detail

    # And another signature appended next to ours (its digest changed too) still verifies
    with registry_client(settings) as client:
        client.put_manifest(repo, signature_tag(image.digest), sig_body[0], OCI_MANIFEST)
        sign_image(client, repo, image.digest, other.private_key, image.repository)
    run_audit()
    assert open_findings() == {}

    # When the release key is no longer trusted (neither signing nor in TRUSTED_SIGNING_KEYS)
    settings.SIGNING_PRIVATE_KEY = None
    run_audit()
    invalid = {f.tag for f in AuditFinding.objects.open().filter(type=Type.SIGNATURE_INVALID)}
    assert invalid == {signature_tag(d) for d in image.signatures}
    assert "TRUSTED_SIGNING_KEYS" in AuditFinding.objects.open().first().detail

    # And trusting its public key again resolves them
    settings.TRUSTED_PUBLIC_KEYS = [release_key.public_pem]
    run_audit()
    assert open_findings() == {}


def test_a_replaced_signature_is_found_in_its_turn_within_the_recheck_runs(
    pipeline,  # noqa: F811
    settings,
    release_key,
    tmp_path,
):
    # Given a signed, published image and signature content read again one run in three
    settings.AUDIT_SIGNATURE_RECHECK_RUNS = 3
    image = queue_image(pipeline.backend())
    assert build_image.apply(args=[image.pk]).get() == ImageState.AVAILABLE
    image.refresh_from_db()
    repo = repository(settings)

    # When the index's .sig is replaced by one holding only another key's signature (still listed)
    other = make_key_pair(tmp_path, "intruder")
    with registry_client(settings) as client:
        client.delete_manifest(repo, client.get_manifest(repo, signature_tag(image.digest))[2])
        sign_image(client, repo, image.digest, other.private_key, image.repository)

    # Then the runs before its turn do not read it, and the run whose turn it is finds it invalid
    runs = []
    for _ in range(3):
        run = run_audit()
        invalid = AuditFinding.objects.open().filter(type=Type.SIGNATURE_INVALID, tag=signature_tag(image.digest))
        runs.append((content_due(image.digest, run.pk, 3), invalid.exists()))
        if invalid.exists():
            break
    assert runs[-1] == (True, True)
    assert all(found is False for due, found in runs[:-1]) and not any(due for due, _ in runs[:-1])
    # every run counted all five signature tags, read or not
    assert run.tags_checked == 2 + 5

    # And once open, the finding is read every run: restoring our signature resolves it at once
    with registry_client(settings) as client:
        client.delete_manifest(repo, client.get_manifest(repo, signature_tag(image.digest))[2])
        sign_image(client, repo, image.digest, release_key.private_key, image.repository)
    run = run_audit()
    assert not content_due(image.digest, run.pk, 3)
    assert open_findings() == {}


def test_chart_signature_deleted_and_restored(chart_source, settings, release_key):  # noqa: F811
    chart = plan_chart(chart_source.commit())
    assert publish_chart.apply(args=[chart.pk]).get() == ChartState.INDEXED
    chart.refresh_from_db()
    signature_findings = AuditFinding.objects.open().filter(helm_chart=chart, type__in=SIGNATURE_TYPES)
    run_audit()
    assert not signature_findings.exists()

    with chart_registry(settings) as client:
        body, media_type, digest = client.get_manifest(chart_repository(settings), signature_tag(chart.digest))
        client.delete_manifest(chart_repository(settings), digest)
    run_audit()
    (finding,) = signature_findings.all()
    assert (finding.type, finding.tag) == (Type.SIGNATURE_MISSING, signature_tag(chart.digest))

    with chart_registry(settings) as client:
        client.put_manifest(chart_repository(settings), signature_tag(chart.digest), body, media_type)
    run_audit()
    assert not signature_findings.all().exists()


def test_unsigned_releases_are_not_checked_without_signing(chart_source, settings):  # noqa: F811
    settings.SIGNING_PRIVATE_KEY = None
    settings.TRUSTED_PUBLIC_KEYS = []
    chart = plan_chart(chart_source.commit())
    assert publish_chart.apply(args=[chart.pk]).get() == ChartState.INDEXED

    run_audit()

    assert not AuditFinding.objects.open().filter(type__in=SIGNATURE_TYPES).exists()
