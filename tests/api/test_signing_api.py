"""What the API says about signing: the public keys (JSON with key ids, and a bare cosign.pub), a
release signed or unsigned, an image's stored provenance; the generate_signing_key command; the
settings that load the keys and refuse bad ones at start."""

from __future__ import annotations

import base64
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from releases.choices import ArtifactType, ChartState, ImageState
from releases.models import DockerImage, HelmChart, ReleaseArtifact
from releases.pipelines.signing import provenance_envelope
from releases.signing import SLSA_PROVENANCE_V1, Envelope, key_id, load_private_key, load_public_key, verify_envelope
from tests.fixtures.factories import COMMIT, digest_of, make_chart, make_image, make_published_set, make_release
from tests.releases.test_settings import start
from tests.signing.conftest import make_key_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def keys(settings, tmp_path):
    signing, rotated = make_key_pair(tmp_path, "signing"), make_key_pair(tmp_path, "rotated")
    settings.SIGNING_PRIVATE_KEY = signing.private_key
    settings.TRUSTED_PUBLIC_KEYS = [rotated.public_pem]
    return signing, rotated


def test_public_keys_are_served_with_their_ids_signing_key_first(api, keys):
    signing, rotated = keys

    body = api.get("/api/v1/signing/keys/").json()

    assert body["signed"] is True and body["signing_key_id"] == key_id(signing.private_key)
    assert [(k["key_id"], k["signing"]) for k in body["keys"]] == [
        (key_id(signing.private_key), True),
        (key_id(load_public_key(rotated.public_pem)), False),
    ]
    assert body["keys"][0]["pem"].encode() == signing.public_pem
    pem = api.get("/api/v1/signing/cosign.pub")
    assert pem.status_code == 200 and pem["Content-Type"] == "application/x-pem-file"
    assert pem.content == signing.public_pem


def test_without_a_key_the_api_says_releases_are_unsigned(api, settings):
    settings.SIGNING_PRIVATE_KEY = None
    settings.TRUSTED_PUBLIC_KEYS = []

    assert api.get("/api/v1/signing/keys/").json() == {"signing_key_id": None, "signed": False, "keys": []}
    assert api.get("/api/v1/signing/cosign.pub").status_code == 404


def test_release_detail_says_signed_only_when_every_artifact_was_signed(api, keys):
    release, frontend, backend, chart = make_published_set()
    unsigned = api.get(f"/api/v1/releases/{release.version}/").json()["signing"]
    assert unsigned == {"signed": False, "signed_with": dict.fromkeys(ArtifactType.values)}
    assert "signing" not in api.get("/api/v1/releases/").json()["results"][0]

    # published rows are frozen: sign a second release as publishing would record it
    signer = key_id(keys[0].private_key)
    release2, *_ = make_signed_set("2.0.0", signer)
    signed = api.get(f"/api/v1/releases/{release2.version}/").json()["signing"]
    assert signed["signed"] is True and set(signed["signed_with"].values()) == {signer}


def make_signed_set(version: str, signer: str):
    """Like make_published_set, with what signing records written before the rows are final."""
    release = make_release(version)
    frontend = make_image("threek8s-frontend", version, ImageState.AVAILABLE, signed_with=signer)
    backend = make_image("threek8s-backend", version, ImageState.AVAILABLE, signed_with=signer)
    chart = make_chart(version, ChartState.INDEXED, signed_with=signer)
    for kind, target in (
        (ArtifactType.DOCKER_FRONTEND, frontend),
        (ArtifactType.DOCKER_BACKEND, backend),
        (ArtifactType.HELM_CHART, chart),
    ):
        fields = {"helm_chart": target} if isinstance(target, HelmChart) else {"docker_image": target}
        ReleaseArtifact.objects.create(
            release=release, type=kind, uri=target.pinned_uri, checksum=target.digest, size=99, **fields
        )
    return release, frontend, backend, chart


def test_provenance_endpoint_serves_the_stored_signed_statement(api, keys, settings):
    signing, _ = keys
    make_release("1.0.0")
    platform_digest = digest_of("amd64")
    image = DockerImage.objects.create(
        name="threek8s-backend",
        tag="1.0.0",
        state=ImageState.PUSHING,
        base_image="alpine:3.20",
        labels={"org.opencontainers.image.created": "2026-11-30T10:00:00Z"},
        platform_digests={"linux/amd64": {"digest": platform_digest, "manifest_size": 10}},
    )
    envelope = provenance_envelope(image, "linux/amd64", platform_digest, signing.private_key)
    DockerImage.objects.filter(pk=image.pk).update(
        signed_with=key_id(signing.private_key),
        provenance={"linux/amd64": envelope.to_json()},
        signatures={platform_digest: {"of": "linux/amd64", "signature": digest_of("s"), "attestation": digest_of("a")}},
    )

    body = api.get(f"/api/v1/images/{image.pk}/provenance/").json()

    served = body["platforms"]["linux/amd64"]
    assert served["digest"] == platform_digest and served["attestations"] == digest_of("a")
    assert served["statement"]["predicateType"] == SLSA_PROVENANCE_V1
    assert served["statement"]["predicate"]["buildDefinition"]["externalParameters"]["source"]["commit"] == COMMIT
    wire = served["envelope"]
    assert verify_envelope(
        [signing.public_pem],
        Envelope(wire["payloadType"], base64.b64decode(wire["payload"]), envelope.signatures),
    )
    assert api.get(f"/api/v1/images/{image.pk}/").json()["signed"] is True


def test_provenance_and_sbom_of_an_unsigned_image_are_404_saying_why(api):
    image = DockerImage.objects.create(name="threek8s-backend", tag="1.0.0")
    for endpoint in ("provenance", "sbom"):
        answer = api.get(f"/api/v1/images/{image.pk}/{endpoint}/")
        assert answer.status_code == 404 and "unsigned" in answer.json()["detail"]


def test_generate_signing_key_writes_an_encrypted_pair_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO("correct horse\n"))
    out = StringIO()

    call_command("generate_signing_key", str(tmp_path / "keys"), "--password-stdin", stdout=out)

    private = (tmp_path / "keys" / "cosign.key").read_bytes()
    public = (tmp_path / "keys" / "cosign.pub").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in private
    assert (tmp_path / "keys" / "cosign.key").stat().st_mode & 0o777 == 0o600
    assert key_id(load_private_key(private, "correct horse")) == key_id(load_public_key(public))
    assert key_id(load_public_key(public)) in out.getvalue()
    with pytest.raises(CommandError, match="already exist"):
        call_command("generate_signing_key", str(tmp_path / "keys"))


def test_settings_load_the_key_and_refuse_a_wrong_password_or_a_missing_file(tmp_path):
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes-256-cbc",
            "-pass",
            "pass:s3cret-pass",
            "-out",
            str(tmp_path / "key.pem"),
        ],
        check=True,
        capture_output=True,
    )
    env = {"DEBUG": "true", "SIGNING_KEY": str(tmp_path / "key.pem")}
    show = ("shell", "-c", "from django.conf import settings as s; print(s.SIGNING_PRIVATE_KEY is not None)")

    assert start({**env, "SIGNING_KEY_PASSWORD": "s3cret-pass"}, *show).stdout.strip().endswith("True")
    wrong = start({**env, "SIGNING_KEY_PASSWORD": "wrong"})
    assert wrong.returncode != 0 and "SIGNING_KEY=" in wrong.stderr and "password" in wrong.stderr
    assert "wrong" not in wrong.stderr.split("SIGNING_KEY=")[1].split("password")[0]
    missing = start({"DEBUG": "true", "SIGNING_KEY": str(tmp_path / "nope.pem")})
    assert missing.returncode != 0 and "cannot be read" in missing.stderr
    untrusted = start({"DEBUG": "true", "TRUSTED_SIGNING_KEYS": str(tmp_path / "key.pem")})
    assert untrusted.returncode != 0 and "TRUSTED_SIGNING_KEYS" in untrusted.stderr


def test_signing_key_password_is_scrubbed():
    result = start(
        {"DEBUG": "true", "SIGNING_KEY_PASSWORD": "pw-that-must-not-leak"},
        "shell",
        "-c",
        "from django.conf import settings as s; print('pw-that-must-not-leak' in s.SCRUBBED_SECRETS)",
    )
    assert result.stdout.strip().endswith("True")


def test_admin_front_page_shows_the_keys_or_says_releases_are_unsigned(admin_client, settings, keys):
    signing, rotated = keys
    page = admin_client.get("/admin/").content.decode()
    assert key_id(signing.private_key) in page and key_id(load_public_key(rotated.public_pem)) in page
    assert signing.public_pem.decode().splitlines()[1] in page

    settings.SIGNING_PRIVATE_KEY = None
    assert "published <strong>unsigned</strong>" in admin_client.get("/admin/").content.decode()
