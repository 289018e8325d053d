"""Verifying what ``storage`` attached, as ``cosign verify --key`` does: a digest's ``.sig`` layers
(simple signing payloads signed by a trusted key, naming this digest) and ``.att`` layers (DSSE
envelopes of in-toto statements about this digest, of the predicate type asked for). Plain Python."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from releases.oci.client import RegistryClient
from releases.oci.errors import DigestMismatch, RegistryError
from releases.signing.blobs import BlobReader
from releases.signing.dsse import IN_TOTO_PAYLOAD_TYPE, envelope_key_ids
from releases.signing.errors import MalformedSignature
from releases.signing.intoto import parse_statement, statement_names_digest
from releases.signing.keys import PublicKeyLike, load_public_key
from releases.signing.simple_signing import (
    parse_simple_signing_payload,
    verifying_key_id,
)
from releases.signing.storage import (
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    AttestationLayer,
    _annotation,
    _attestation_layer,
    _layers_of,
    _read_manifest,
    _signature_layer,
    attestation_tag,
    signature_tag,
)


class VerificationStatus(StrEnum):
    """What an audit records for an image's signatures or attestations."""

    OK = "ok"  # at least one, by a trusted key, over this very digest
    MISSING = "missing"  # no .sig/.att manifest, or one without entries
    INVALID = "invalid"  # entries exist, but none verifies (wrong key, tampered, wrong digest)


@dataclass(frozen=True)
class VerificationResult:
    """The verdict on one image, with a detail string meant for people reading an audit."""

    status: VerificationStatus
    detail: str
    key_ids: tuple[str, ...] = ()
    manifest_digest: str | None = None  # of the .sig/.att manifest, when there is one

    @property
    def ok(self) -> bool:
        return self.status is VerificationStatus.OK


def verify_image_signatures(
    client: RegistryClient,
    repository: str,
    digest: str,
    trusted_keys: Sequence[PublicKeyLike],
    *,
    docker_reference: str | None = None,
) -> VerificationResult:
    """Whether ``digest`` in ``repository`` carries a signature by one of ``trusted_keys``.

    OK when at least one layer of its ``.sig`` verifies with a trusted key and its payload signs
    this digest (and names ``docker_reference``, when given); other layers (untrusted keys, older
    formats) are then reported in the detail but do not fail it, as with ``cosign verify``.
    MISSING when there is no ``.sig`` or it has no signature; INVALID otherwise, with every reason.
    Registry failures (unavailable, auth) raise rather than being reported as a verdict.
    """
    keys = [load_public_key(key) for key in trusted_keys]
    tag = signature_tag(digest)
    found = _subject_manifest(client, repository, tag, digest, "signature")
    if isinstance(found, VerificationResult):
        return found
    document, manifest_digest = found
    layers = _layers_of(document, SIMPLE_SIGNING_MEDIA_TYPE)
    if not layers:
        return VerificationResult(
            VerificationStatus.MISSING,
            f"{repository}:{tag} holds no simple signing layer",
            manifest_digest=manifest_digest,
        )

    def read(reader: BlobReader, descriptor: Mapping[str, Any]) -> tuple[Any, Any]:
        layer = _signature_layer(reader, repository, descriptor)
        return layer, parse_simple_signing_payload(layer.payload)

    def judge(read_layer: tuple[Any, Any]) -> tuple[list[str], str | None]:
        layer, claim = read_layer
        signer = verifying_key_id(keys, layer.payload, layer.signature)
        if signer is None:
            return [], "not made by a trusted key over this payload"
        if claim.manifest_digest != digest:
            return [], f"signs {claim.manifest_digest}, not {digest}"
        if docker_reference is not None and claim.docker_reference != docker_reference:
            return [], f"signs reference {claim.docker_reference!r}, not {docker_reference!r}"
        return [signer], None

    verified, problems = _judge_layers(client, layers, "signature", "payload", read, judge)
    return _verdict("signature", verified, problems, manifest_digest)


def verify_image_attestations(
    client: RegistryClient,
    repository: str,
    digest: str,
    trusted_keys: Sequence[PublicKeyLike],
    *,
    predicate_type: str | None = None,
) -> VerificationResult:
    """Whether ``digest`` carries an attestation (of ``predicate_type``, when given) signed by
    one of ``trusted_keys``.

    An envelope counts when a trusted key signed its PAE, it is an in-toto statement whose
    subjects include ``digest``, and the statement's own (signed) ``predicateType`` is the one
    asked for; the layer's ``predicateType`` annotation is unsigned, so a disagreement with the
    statement makes the layer invalid rather than trusted. Verdicts as in
    :func:`verify_image_signatures`.
    """
    keys = [load_public_key(key) for key in trusted_keys]
    tag = attestation_tag(digest)
    found = _subject_manifest(client, repository, tag, digest, "attestation")
    if isinstance(found, VerificationResult):
        return found
    document, manifest_digest = found
    layers = _layers_of(document, DSSE_MEDIA_TYPE)
    if predicate_type is not None:
        layers = [layer for layer in layers if _annotation(layer, PREDICATE_TYPE_ANNOTATION) == predicate_type]
    if not layers:
        wanted = f" of type {predicate_type}" if predicate_type else ""
        return VerificationResult(
            VerificationStatus.MISSING,
            f"{repository}:{tag} holds no attestation{wanted}",
            manifest_digest=manifest_digest,
        )

    def judge(layer: Any) -> tuple[list[str], str | None]:
        signers = envelope_key_ids(keys, layer.envelope)
        if not signers:
            return [], "not signed by a trusted key (or its payload was altered)"
        reason = _statement_problem(layer, digest, predicate_type)
        return ([], reason) if reason else (signers, None)

    verified, problems = _judge_layers(
        client,
        layers,
        "attestation",
        "envelope",
        lambda reader, descriptor: _attestation_layer(reader, repository, descriptor),
        judge,
    )
    return _verdict("attestation", verified, problems, manifest_digest)


def _judge_layers(
    client: RegistryClient,
    layers: Sequence[Mapping[str, Any]],
    kind: str,
    blob: str,
    read: Callable[[BlobReader, Mapping[str, Any]], Any],
    judge: Callable[[Any], tuple[list[str], str | None]],
) -> tuple[list[str], list[str]]:
    """Read each of a ``.sig``/``.att`` manifest's layers and judge it: the trusted key ids that
    verified (each once, in order) and every problem, numbered by layer. A layer that does not
    parse, or whose blob is gone, is a problem; any other registry failure raises."""
    verified: list[str] = []
    problems: list[str] = []
    with BlobReader(client) as reader:
        for number, descriptor in enumerate(layers, 1):
            try:
                layer = read(reader, descriptor)
            except (MalformedSignature, DigestMismatch) as exc:
                problems.append(f"{kind} {number}: {exc}")
                continue
            except RegistryError as exc:
                if exc.status_code != 404:
                    raise
                problems.append(f"{kind} {number}: its {blob} blob {descriptor.get('digest')} is missing")
                continue
            signers, problem = judge(layer)
            if problem:
                problems.append(f"{kind} {number}: {problem}")
            else:
                verified.extend(signer for signer in signers if signer not in verified)
    return verified, problems


def _subject_manifest(
    client: RegistryClient, repository: str, tag: str, digest: str, what: str
) -> tuple[dict, str] | VerificationResult:
    """The ``.sig``/``.att`` manifest at ``tag`` and its digest, or the verdict when there is none
    (MISSING) or it is malformed or names another subject (INVALID)."""
    try:
        found = _read_manifest(client, repository, tag)
    except MalformedSignature as exc:
        return VerificationResult(VerificationStatus.INVALID, str(exc))
    if found is None:
        return VerificationResult(VerificationStatus.MISSING, f"no {what}: {repository}:{tag} does not exist")
    document, manifest_digest = found
    problem = _subject_problem(document, digest, tag)
    if problem:
        return VerificationResult(VerificationStatus.INVALID, problem, manifest_digest=manifest_digest)
    return document, manifest_digest


def _subject_problem(document: Mapping[str, Any], digest: str, tag: str) -> str | None:
    subject = document.get("subject")
    if isinstance(subject, dict) and subject.get("digest") != digest:
        return f"{tag} names subject {subject.get('digest')}, not {digest}: it was copied from another image"
    return None


def _statement_problem(layer: AttestationLayer, digest: str, predicate_type: str | None) -> str | None:
    if layer.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        return f"payloadType is {layer.envelope.payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE!r}"
    try:
        statement = parse_statement(layer.envelope.payload)
    except MalformedSignature as exc:
        return str(exc)
    if not statement_names_digest(statement, digest):
        return f"the statement is about other subjects, not {digest}"
    signed_type = statement["predicateType"]
    if layer.predicate_type and layer.predicate_type != signed_type:
        return f"annotated predicateType {layer.predicate_type!r} but the signed statement says {signed_type!r}"
    if predicate_type is not None and signed_type != predicate_type:
        return f"attests {signed_type!r}, not {predicate_type!r}"
    return None


def _verdict(what: str, verified: list[str], problems: list[str], manifest_digest: str) -> VerificationResult:
    if verified:
        detail = f"{what} verified by key {', '.join(k[:16] for k in verified)}"
        if problems:
            detail += f"; {len(problems)} other {what}(s) not verified: " + "; ".join(problems)
        return VerificationResult(VerificationStatus.OK, detail, tuple(verified), manifest_digest)
    return VerificationResult(VerificationStatus.INVALID, "; ".join(problems), (), manifest_digest)
