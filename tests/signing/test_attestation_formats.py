"""DSSE envelopes, in-toto statements and SLSA provenance: the formats, without a registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from releases.oci import canonical_json
from releases.redaction import redact_url
from releases.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V1,
    Envelope,
    MalformedSignature,
    add_envelope_signature,
    envelope_key_ids,
    in_toto_statement,
    key_id,
    pae,
    parse_statement,
    sign_envelope,
    slsa_provenance,
    statement_names_digest,
    verify_envelope,
)
from tests.signing.conftest import KeyPair, OpenSSL

DIGEST = "sha256:" + "cd" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"
STARTED = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", "\u00e9".encode()) == b"DSSEv1 3 t\xc3\xa9 2 \xc3\xa9"


def test_envelope_signature_verifies_with_openssl_over_the_pae_bytes(
    openssl: OpenSSL, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    statement = in_toto_statement("registry.example.com/team/app", DIGEST, "https://example.com/p/v1", {"a": 1})
    payload = canonical_json(statement)

    envelope = sign_envelope(key_pair.private_key, payload)

    wire = json.loads(envelope.to_bytes())
    assert wire["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert wire["signatures"][0]["keyid"] == key_id(key_pair.public_pem)
    signed_bytes = pae(IN_TOTO_PAYLOAD_TYPE, payload)
    assert openssl.verify(key_pair.public_path, signed_bytes, wire["signatures"][0]["sig"])
    assert not openssl.verify(key_pair.public_path, payload, wire["signatures"][0]["sig"])
    assert not openssl.verify(other_key_pair.public_path, signed_bytes, wire["signatures"][0]["sig"])


def test_envelope_round_trips_and_verifies_against_trusted_keys_only(
    key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    envelope = sign_envelope(key_pair.private_key, b'{"x":1}')

    again = Envelope.from_bytes(envelope.to_bytes())

    assert again == envelope
    assert verify_envelope([other_key_pair.public_pem, key_pair.public_pem], again)
    assert not verify_envelope([other_key_pair.public_pem], again)
    retyped = Envelope("application/vnd.other+json", again.payload, again.signatures)
    assert not verify_envelope([key_pair.public_pem], retyped)  # the type is inside the signed bytes


def test_envelope_from_openssl_signature_over_pae_is_accepted(openssl: OpenSSL, key_pair: KeyPair) -> None:
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    signature = openssl.sign(key_pair.private_path, pae(IN_TOTO_PAYLOAD_TYPE, payload))

    envelope = Envelope.from_bytes(
        json.dumps(
            {
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
                "signatures": [{"keyid": "", "sig": signature}],
            }
        ).encode()
    )

    assert envelope.payload == payload
    assert envelope_key_ids([key_pair.public_pem], envelope) == [key_id(key_pair.public_pem)]


def test_a_second_key_adds_a_second_envelope_signature_once(key_pair: KeyPair, other_key_pair: KeyPair) -> None:
    envelope = sign_envelope(key_pair.private_key, b"{}")

    both = add_envelope_signature(envelope, other_key_pair.private_key)

    assert len(both.signatures) == 2
    assert add_envelope_signature(both, other_key_pair.private_key) == both
    assert envelope_key_ids([key_pair.public_pem, other_key_pair.public_pem], both) == [
        key_id(key_pair.public_pem),
        key_id(other_key_pair.public_pem),
    ]


@pytest.mark.parametrize("data", [b"not json", b'{"payload":"!!","payloadType":"t"}', b'{"payloadType":"t"}'])
def test_what_is_not_an_envelope_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedSignature, match="not a DSSE envelope"):
        Envelope.from_bytes(data)


def test_in_toto_statement_v1_names_the_subject_by_digest() -> None:
    statement = in_toto_statement("registry.example.com/team/app", DIGEST, SLSA_PROVENANCE_V1, {"k": "v"})

    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.example.com/team/app", "digest": {"sha256": "cd" * 32}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {"k": "v"},
    }
    assert statement_names_digest(statement, DIGEST)
    assert not statement_names_digest(statement, "sha256:" + "00" * 32)
    assert parse_statement(canonical_json(statement)) == statement
    with pytest.raises(MalformedSignature, match="not an in-toto statement"):
        parse_statement(b'{"_type":"something else"}')


def test_slsa_provenance_records_the_build_without_credentials() -> None:
    predicate = slsa_provenance(
        builder_id="https://releases.example.com/builder/v1",
        build_type="https://releases.example.com/build/docker@v1",
        source_repository="https://x-access-token:ghs_secret@github.com/acme/app.git?token=abc",
        commit_sha=COMMIT.upper(),
        version="1.4.0",
        build_args={"VERSION": "1.4.0", "BASE": "debian"},
        base_image="docker.io/library/debian:12",
        base_image_digest="sha256:" + "ef" * 32,
        started_on=STARTED,
        finished_on=STARTED + timedelta(minutes=3),
        invocation_id="release-42",
    )

    text = json.dumps(predicate)
    assert "ghs_secret" not in text and "x-access-token" not in text and "token=abc" not in text
    definition = predicate["buildDefinition"]
    assert definition["buildType"] == "https://releases.example.com/build/docker@v1"
    assert definition["externalParameters"] == {
        "source": {"repository": "https://github.com/acme/app.git", "commit": COMMIT},
        "version": "1.4.0",
        "buildArgs": {"BASE": "debian", "VERSION": "1.4.0"},
    }
    assert definition["resolvedDependencies"] == [
        {"uri": f"git+https://github.com/acme/app.git@{COMMIT}", "digest": {"gitCommit": COMMIT}},
        {"name": "docker.io/library/debian:12", "digest": {"sha256": "ef" * 32}},
    ]
    assert predicate["runDetails"] == {
        "builder": {"id": "https://releases.example.com/builder/v1"},
        "metadata": {
            "startedOn": "2025-03-01T12:00:00Z",
            "finishedOn": "2025-03-01T12:03:00Z",
            "invocationId": "release-42",
        },
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("https://token@git.example.com:8443/a/b", "https://git.example.com:8443/a/b"),
        ("ssh://git@github.com/acme/app.git", "ssh://github.com/acme/app.git"),
        ("git@github.com:acme/app.git", "github.com:acme/app.git"),
        ("https://github.com/acme/app", "https://github.com/acme/app"),
    ],
)
def test_urls_lose_their_userinfo(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"commit_sha": "abc123"}, "full git commit SHA"),
        ({"started_on": datetime(2025, 3, 1, 12, 0)}, "timezone-aware"),
        ({"finished_on": STARTED - timedelta(seconds=1)}, "before it started"),
        ({"base_image_digest": "sha256:short"}, "digest"),
    ],
)
def test_slsa_provenance_refuses_inconsistent_input(changes: dict[str, object], words: str) -> None:
    arguments: dict[str, object] = {
        "builder_id": "b",
        "build_type": "t",
        "source_repository": "https://github.com/acme/app",
        "commit_sha": COMMIT,
        "version": "1.0.0",
        "started_on": STARTED,
        "finished_on": STARTED,
        **changes,
    }
    with pytest.raises(ValueError, match=words):
        slsa_provenance(**arguments)  # type: ignore[arg-type]


def test_slsa_provenance_lists_every_stage_base_once_after_the_final_one() -> None:
    final = ("127.0.0.1:5000/base/tiny:1", "sha256:" + "ab" * 32)
    builder = ("docker.io/library/golang:1.23", "sha256:" + "cd" * 32)
    predicate = slsa_provenance(
        builder_id="https://releases.example.com/builder/v1",
        build_type="https://releases.example.com/build/docker@v1",
        source_repository="https://github.com/acme/app.git",
        commit_sha=COMMIT,
        version="1.4.0",
        base_image=final[0],
        base_image_digest=final[1],
        started_on=STARTED,
        finished_on=STARTED + timedelta(minutes=1),
        stage_bases=[builder, final, builder],
    )

    assert predicate["buildDefinition"]["resolvedDependencies"][1:] == [
        {"name": final[0], "digest": {"sha256": "ab" * 32}},
        {"name": builder[0], "digest": {"sha256": "cd" * 32}},
    ]
