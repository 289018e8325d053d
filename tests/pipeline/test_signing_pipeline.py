"""Publishing with ``SIGNING_KEY``, against real dockerd, docker-registry, helm and openssl: every
index, platform manifest and chart manifest carries a cosign signature that openssl verifies with
the public key (and no other), each platform its signed SLSA provenance, all before the version
tag is put; a redelivered push adds nothing; without a key the release is published unsigned."""

from __future__ import annotations

import json
import uuid

import pytest
from rest_framework.test import APIClient

from releases.charts import oci_tag
from releases.choices import ChartState, ImageState
from releases.imagebuild import SbomError
from releases.models import DockerImage
from releases.oci import RegistryClient, RegistryUnavailable
from releases.oci.manifest import canonical_json
from releases.pipelines.charts import run_chart_pipeline
from releases.pipelines.images import push
from releases.pipelines.signing import SPDX_PREDICATE_TYPE, build_type, sboms_in_background
from releases.sandbox.tiny_base import push_multiarch_base_image
from releases.signing import (
    SLSA_PROVENANCE_V1,
    attach_attestation,
    attestation_tag,
    in_toto_statement,
    key_id,
    parse_simple_signing_payload,
    read_attestations,
    read_signatures,
    sign_envelope,
    signature_tag,
)
from releases.tasks import build_image, publish_chart
from tests.fixtures.proxy import BreakingProxy
from tests.pipeline.test_chart_pipeline import ChartSource, chart_repository, plan_chart
from tests.pipeline.test_chart_pipeline import registry as chart_registry
from tests.pipeline.test_image_pipeline import pipeline, queue_image, registry_client, repository  # noqa: F401
from tests.signing.conftest import KeyPair, OpenSSL, make_key_pair

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def openssl(tmp_path) -> OpenSSL:
    workdir = tmp_path / "openssl"
    workdir.mkdir()
    return OpenSSL(workdir)


@pytest.fixture
def release_key(settings, tmp_path) -> KeyPair:
    """``SIGNING_KEY`` set to a fresh P-256 key (as settings would load it)."""
    pair = make_key_pair(tmp_path, "release")
    settings.SIGNING_KEY = str(pair.private_path)
    settings.SIGNING_PRIVATE_KEY = pair.private_key
    settings.TRUSTED_PUBLIC_KEYS = []
    return pair


@pytest.fixture
def other_key(tmp_path) -> KeyPair:
    return make_key_pair(tmp_path, "someone-else")


def test_signed_image_every_manifest_verifies_with_openssl_and_the_provenance_names_the_commit(
    pipeline,  # noqa: F811
    settings,
    release_key,
    other_key,
    openssl,
    multiarch_base_image,
):
    # Given a key and a queued image of a real commit
    settings.IMAGE_BUILD_ARGS = {"APP_MODE": "production"}
    sha = pipeline.backend()
    image = queue_image(sha)

    # When the image is built and pushed
    assert build_image.apply(args=[image.pk]).get() == ImageState.AVAILABLE

    # Then the index and every platform manifest carry one signature by the key, over cosign's payload
    image.refresh_from_db()
    repo = repository(settings)
    platform_digests = {platform: described["digest"] for platform, described in image.platform_digests.items()}
    assert len(platform_digests) == 2
    with registry_client(settings) as client:
        for digest in [image.digest, *platform_digests.values()]:
            (layer,) = read_signatures(client, repo, digest)
            claim = parse_simple_signing_payload(layer.payload)
            assert (claim.manifest_digest, claim.docker_reference) == (digest, image.repository)
            assert openssl.verify(release_key.public_path, layer.payload, layer.signature)
            assert not openssl.verify(other_key.public_path, layer.payload, layer.signature)

        # And every platform manifest a DSSE-signed SLSA provenance and SBOM about exactly that manifest
        for platform, digest in platform_digests.items():
            attestations = {layer.predicate_type: layer for layer in read_attestations(client, repo, digest)}
            assert set(attestations) == {SLSA_PROVENANCE_V1, SPDX_PREDICATE_TYPE}
            for layer in attestations.values():
                (signature,) = layer.envelope.signatures
                assert openssl.verify(release_key.public_path, layer.envelope.pae(), signature.sig)
                assert not openssl.verify(other_key.public_path, layer.envelope.pae(), signature.sig)
                assert not openssl.verify(release_key.public_path, layer.envelope.payload, signature.sig)  # PAE only
                subjects = json.loads(layer.envelope.payload)["subject"]
                assert subjects == [{"name": image.repository, "digest": {"sha256": digest.split(":")[1]}}]
            sbom = json.loads(attestations[SPDX_PREDICATE_TYPE].envelope.payload)["predicate"]
            assert sbom["spdxVersion"].startswith("SPDX-") and sbom["name"].startswith(image.repository)
            attestation = attestations[SLSA_PROVENANCE_V1]
            envelope = attestation.envelope
            statement = json.loads(envelope.payload)
            assert statement["subject"] == [{"name": image.repository, "digest": {"sha256": digest.split(":")[1]}}]
            assert statement["predicateType"] == attestation.predicate_type == SLSA_PROVENANCE_V1
            build = statement["predicate"]["buildDefinition"]
            assert build["buildType"] == build_type()
            assert build["externalParameters"]["source"] == {"repository": pipeline.url, "commit": sha}
            assert build["externalParameters"]["version"] == "1.0.0"
            assert build["externalParameters"]["buildArgs"] == {"APP_MODE": "production"}
            base = build["resolvedDependencies"][1]
            pulled = {multiarch_base_image.index_digest, *multiarch_base_image.manifest_digests.values()}
            assert base["name"] == pipeline.base_image and f"sha256:{base['digest']['sha256']}" in pulled
            run = statement["predicate"]["runDetails"]
            assert run["builder"]["id"] == settings.PROVENANCE_BUILDER_ID
            assert run["metadata"]["startedOn"] <= run["metadata"]["finishedOn"]
            assert image.provenance[platform] == envelope.to_json()
        tags = set(client.list_tags(repo))

    # And the row says what was signed, with the digests of the .sig/.att manifests
    assert image.signed_with == key_id(release_key.private_key)
    assert image.signatures[image.digest]["of"] == "index"
    assert {entry["of"] for entry in image.signatures.values()} == {"index", *platform_digests}
    assert tags == {
        "1.0.0",
        "latest",
        *(signature_tag(d) for d in [image.digest, *platform_digests.values()]),
        *(attestation_tag(d) for d in platform_digests.values()),
    }

    # And the API serves the provenance (stored) and the SBOMs (read from the registry, verified)
    api = APIClient()
    provenance = api.get(f"/api/v1/images/{image.pk}/provenance/").json()
    assert {p: v["statement"]["subject"][0]["digest"]["sha256"] for p, v in provenance["platforms"].items()} == {
        p: d.split(":")[1] for p, d in platform_digests.items()
    }
    sboms = api.get(f"/api/v1/images/{image.pk}/sbom/").json()["platforms"]
    assert set(sboms) == set(platform_digests) and all(s["spdxVersion"].startswith("SPDX-") for s in sboms.values())

    # And a push delivered again (as after a crash between signing and mark_available) adds no layer
    again = push(image)
    assert again.signing.signatures == image.signatures
    with registry_client(settings) as client:
        for digest in [image.digest, *platform_digests.values()]:
            assert len(read_signatures(client, repo, digest)) == 1
        for digest in platform_digests.values():
            assert len(read_attestations(client, repo, digest)) == 2


def test_without_a_key_the_image_is_published_unsigned(pipeline, settings):  # noqa: F811
    settings.SIGNING_PRIVATE_KEY = None
    image = queue_image(pipeline.backend())

    assert build_image.apply(args=[image.pk]).get() == ImageState.AVAILABLE

    image.refresh_from_db()
    assert (image.signed_with, image.signatures, image.provenance, image.is_signed) == ("", {}, {}, False)
    with registry_client(settings) as client:
        assert sorted(client.list_tags(repository(settings))) == ["1.0.0", "latest"]


def test_syft_starts_in_the_background_only_for_platforms_without_an_sbom_and_fails_when_asked(
    settings, oci_registry, release_key, tmp_path
):
    # Given an image whose amd64 manifest already carries an SBOM attestation by the key, and whose
    # arm64 manifest has none and no OCI layout to make one from
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/t{uuid.uuid4().hex[:10]}"
    image = DockerImage(name="threek8s-backend", tag="1.0.0")
    key = release_key.private_key
    with RegistryClient(oci_registry.host) as client:
        base = push_multiarch_base_image(client, repository=image.repository_path, tag="base")
        refs = {
            platform: client.head_manifest(image.repository_path, base.manifest_digests[described])
            for platform, described in (("linux/amd64", "linux/amd64"), ("linux/arm64", "linux/arm64/v8"))
        }
        statement = in_toto_statement(
            image.repository, refs["linux/amd64"].digest, SPDX_PREDICATE_TYPE, {"spdxVersion": "SPDX-2.3"}
        )
        envelope = sign_envelope(key, canonical_json(statement))
        attach_attestation(client, image.repository_path, refs["linux/amd64"], envelope, signer=key.public_key())
        layouts = {platform: tmp_path / "gone" / platform.replace("/", "-") for platform in refs}

        # When the push starts the SBOMs
        with sboms_in_background(client, image, refs, layouts) as sboms:
            # Then syft runs for arm64 alone, and its failure comes with the document
            assert set(sboms.started) == {"linux/arm64"}
            assert set(sboms.attested) == {"linux/amd64"}
            with pytest.raises(SbomError, match="is not an OCI image layout"):
                sboms.document("linux/arm64")


@pytest.fixture
def chart_source_behind_proxy(settings, tmp_path, oci_registry, helm_bin):
    """The chart source, with the registry reached through a recording proxy."""
    proxy = BreakingProxy(oci_registry.url, lambda method, path, number: "forward")
    settings.REGISTRY_NAMESPACE = f"{proxy.host}/c{uuid.uuid4().hex[:10]}"
    settings.HELM_BIN = helm_bin
    settings.BUILD_WORKDIR = tmp_path / "builds"
    source = ChartSource(tmp_path / "source")
    settings.SOURCE_REPOSITORY_URL = f"file://{source.root}"
    yield source, proxy
    proxy.close()


def test_signed_chart_manifest_verifies_and_is_signed_before_its_version_tag(
    chart_source_behind_proxy, settings, release_key, other_key, openssl
):
    source, proxy = chart_source_behind_proxy
    chart = plan_chart(source.commit())

    assert publish_chart.apply(args=[chart.pk]).get() == ChartState.INDEXED

    chart.refresh_from_db()
    repo = chart_repository(settings)
    with chart_registry(settings) as client:
        (layer,) = read_signatures(client, repo, chart.digest)
    assert parse_simple_signing_payload(layer.payload).manifest_digest == chart.digest
    assert openssl.verify(release_key.public_path, layer.payload, layer.signature)
    assert not openssl.verify(other_key.public_path, layer.payload, layer.signature)
    assert chart.signed_with == key_id(release_key.private_key)
    assert chart.signatures == {chart.digest: {"of": "chart", "signature": chart.signatures[chart.digest]["signature"]}}
    # The manifest went up by digest, then its .sig, and only then the version tag
    puts = [path for method, path, _, status in proxy.requests if method == "PUT" and "/manifests/" in path]
    version_put = puts.index(f"/v2/{repo}/manifests/{oci_tag(chart.chart_version)}")
    sig_put = puts.index(f"/v2/{repo}/manifests/{signature_tag(chart.digest)}")
    assert puts.index(f"/v2/{repo}/manifests/{chart.digest}") < sig_put < version_put


def test_a_chart_upload_redelivered_after_signing_adds_no_second_signature(
    chart_source_behind_proxy, settings, release_key
):
    # Given an upload that signed the manifest and then lost the registry before the version tag
    source, proxy = chart_source_behind_proxy
    chart = plan_chart(source.commit())
    tag_put = f"/manifests/{oci_tag(chart.chart_version)}"
    proxy.rule = lambda method, path, number: "503" if method == "PUT" and path.endswith(tag_put) else "forward"
    with pytest.raises(RegistryUnavailable):
        run_chart_pipeline(chart.pk)
    chart.refresh_from_db()
    assert chart.state == ChartState.UPLOADING
    with chart_registry(settings) as client:
        tags = client.list_tags(chart_repository(settings))
        (signed,) = [tag for tag in tags if tag.endswith(".sig")]
        assert oci_tag(chart.chart_version) not in tags  # signed, never tagged
        (first,) = read_signatures(client, chart_repository(settings), "sha256:" + signed[7:-4])

    # When the task is delivered again with the registry back
    proxy.rule = lambda method, path, number: "forward"
    assert publish_chart.apply(args=[chart.pk]).get() == ChartState.INDEXED

    # Then the chart is signed once, with the same signature
    chart.refresh_from_db()
    with chart_registry(settings) as client:
        assert read_signatures(client, chart_repository(settings), chart.digest) == [first]
    assert chart.signed_with == key_id(release_key.private_key)
