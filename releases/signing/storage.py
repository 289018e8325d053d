"""Signatures and attestations stored next to an image, the way cosign stores them.

For an image manifest ``sha256:<hex>`` in a repository, cosign keeps:

- ``sha256-<hex>.sig``: an OCI image manifest with one layer per signature, of media type
  ``application/vnd.dev.cosign.simplesigning.v1+json``; the layer's blob is the simple signing
  payload and its ``dev.cosignproject.cosign/signature`` annotation the base64 signature;
- ``sha256-<hex>.att``: the same with one layer per attestation, of media type
  ``application/vnd.dsse.envelope.v1+json``; the blob is the DSSE envelope and the
  ``predicateType`` annotation says what it attests.

Both manifests carry a small config blob (an OCI image config whose ``rootfs.diff_ids`` are the
layer digests, as go-containerregistry writes it) and an OCI 1.1 ``subject`` descriptor pointing
at the signed manifest, so registries with the referrers API list them too.

Writing is append-only and idempotent: existing layers (other keys', cosign's own, with
certificates or bundles) are kept verbatim, and a signature the same key already made over the
same payload is not added again. The tag is read, extended and written back; when another writer
moves it in between, the merge is redone (a few times), but two writers can still overwrite each
other if the registry answers them in the worst order, so serialise signing per image when
several workers sign the same digest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from releases.oci.client import RegistryClient
from releases.oci.digest import sha256_digest
from releases.oci.errors import DigestMismatch, ManifestNotFound, RegistryError
from releases.oci.manifest import ManifestRef, canonical_json
from releases.oci.media_types import OCI_CONFIG, OCI_MANIFEST
from releases.oci.names import is_digest, validate_digest
from releases.signing.blobs import BlobReader
from releases.signing.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, envelope_key_ids, sign_envelope, verify_envelope
from releases.signing.errors import MalformedSignature, SigningError
from releases.signing.intoto import in_toto_statement, parse_statement, statement_names_digest
from releases.signing.keys import PublicKeyLike, load_public_key
from releases.signing.simple_signing import (
    parse_simple_signing_payload,
    sign,
    simple_signing_payload,
    verify,
    verifying_key_id,
)

logger = logging.getLogger(__name__)

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_TYPE_ANNOTATION = "predicateType"

#: How often an append is merged again when another writer moved the tag meanwhile.
MAX_MERGE_ATTEMPTS = 5

Subject = ManifestRef | str


def _tag(digest: str, suffix: str) -> str:
    validate_digest(digest)
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}.{suffix}"


def signature_tag(digest: str) -> str:
    """The tag cosign stores an image's signatures under: ``sha256:<hex>`` -> ``sha256-<hex>.sig``."""
    return _tag(digest, "sig")


def attestation_tag(digest: str) -> str:
    """The tag cosign stores an image's attestations under: ``sha256-<hex>.att``."""
    return _tag(digest, "att")


@dataclass(frozen=True)
class AttachResult:
    """Outcome of an append: the ``.sig``/``.att`` manifest's digest, whether a layer was added, and
    how many layers the manifest now has."""

    manifest_digest: str
    added: bool
    layers: int


@dataclass(frozen=True)
class SignatureLayer:
    """One signature read from a ``.sig`` manifest: the payload bytes and the base64 signature."""

    payload: bytes
    signature: str
    layer_digest: str
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AttestationLayer:
    """One attestation read from a ``.att`` manifest: its DSSE envelope and ``predicateType`` annotation."""

    envelope: Envelope
    predicate_type: str
    layer_digest: str


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


# -- signatures ------------------------------------------------------------------------------------


def sign_image(
    client: RegistryClient,
    repository: str,
    subject: Subject,
    private_key: ec.EllipticCurvePrivateKey,
    docker_reference: str,
) -> AttachResult:
    """Sign the manifest ``subject`` (a digest, or the :class:`ManifestRef` a HEAD returned) in
    ``repository`` with cosign's simple signing payload, and store the signature in its ``.sig``.

    Idempotent: signing again with the same key adds nothing; another key's signature is appended.
    Raises :class:`~releases.oci.errors.ManifestNotFound` when the subject is not in the repository.
    """
    ref = resolve_subject(client, repository, subject)
    payload = simple_signing_payload(docker_reference, ref.digest)
    return attach_signature(
        client, repository, ref, payload, sign(private_key, payload), signer=private_key.public_key()
    )


def attach_signature(
    client: RegistryClient,
    repository: str,
    subject: Subject,
    payload: bytes,
    signature: str,
    *,
    signer: PublicKeyLike | None = None,
) -> AttachResult:
    """Append one signature layer (``payload`` with its base64 ``signature``) to the subject's ``.sig``.

    Adds nothing when a layer with this payload already carries this signature or, if ``signer``
    (the signing public key) is given, any signature by that key. Refuses (``ValueError``) a
    signature that ``signer`` did not make, and a payload that signs another digest than the
    subject's: such a layer could never verify.
    """
    ref = resolve_subject(client, repository, subject)
    signed_digest = parse_simple_signing_payload(payload).manifest_digest
    if signed_digest != ref.digest:
        raise ValueError(f"the payload signs {signed_digest}, not the subject {ref.digest}; sign the subject's digest")
    signer_key = load_public_key(signer) if signer is not None else None
    if signer_key is not None and not verify([signer_key], payload, signature):
        raise ValueError("the signature was not made by the given signer key over this payload")
    payload_digest = sha256_digest(payload)

    def already_there(layer: Mapping[str, Any], _reader: BlobReader) -> bool:
        if layer.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE or layer.get("digest") != payload_digest:
            return False
        existing = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION, "")
        return existing == signature or (signer_key is not None and verify([signer_key], payload, existing))

    layer = {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "digest": payload_digest,
        "size": len(payload),
        "annotations": {SIGNATURE_ANNOTATION: signature},
    }
    return _append_layer(client, repository, ref, signature_tag(ref.digest), layer, payload, already_there)


def read_signatures(client: RegistryClient, repository: str, digest: str) -> list[SignatureLayer] | None:
    """The simple signing layers of ``digest``'s ``.sig`` manifest; ``None`` when there is none.

    Layers of other media types are skipped. Raises :class:`MalformedSignature` for a ``.sig``
    manifest that is not an image manifest, and the registry's errors (a layer blob that is absent
    or does not match its digest included) as they come.
    """
    found = _read_manifest(client, repository, signature_tag(digest))
    if found is None:
        return None
    document, _ = found
    with BlobReader(client) as reader:
        return [
            _signature_layer(reader, repository, layer) for layer in _layers_of(document, SIMPLE_SIGNING_MEDIA_TYPE)
        ]


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


# -- attestations ----------------------------------------------------------------------------------


def attest_image(
    client: RegistryClient,
    repository: str,
    subject: Subject,
    private_key: ec.EllipticCurvePrivateKey,
    *,
    subject_name: str,
    predicate_type: str,
    predicate: Mapping[str, Any],
) -> AttachResult:
    """Attest ``predicate`` about the manifest ``subject``: an in-toto statement naming
    ``subject_name`` and the subject's digest, in a DSSE envelope signed by ``private_key``,
    appended to the subject's ``.att``. Idempotent like :func:`sign_image`.
    """
    ref = resolve_subject(client, repository, subject)
    statement = in_toto_statement(subject_name, ref.digest, predicate_type, predicate)
    envelope = sign_envelope(private_key, canonical_json(statement))
    return attach_attestation(client, repository, ref, envelope, signer=private_key.public_key())


def attach_attestation(
    client: RegistryClient,
    repository: str,
    subject: Subject,
    envelope: Envelope,
    *,
    signer: PublicKeyLike | None = None,
) -> AttachResult:
    """Append one DSSE envelope layer to the subject's ``.att`` (``predicateType`` annotated).

    Adds nothing when the same envelope is there already or, if ``signer`` is given, an envelope
    with the same statement signed by that key. Refuses (``ValueError``) an envelope that is not
    an in-toto statement about the subject's digest, and one ``signer`` did not sign.
    """
    ref = resolve_subject(client, repository, subject)
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise ValueError(f"the envelope's payloadType is {envelope.payload_type!r}, expected {IN_TOTO_PAYLOAD_TYPE!r}")
    statement = parse_statement(envelope.payload)
    if not statement_names_digest(statement, ref.digest):
        raise ValueError(f"the statement's subjects do not include {ref.digest}; attest the subject's digest")
    signer_key = load_public_key(signer) if signer is not None else None
    if signer_key is not None and not verify_envelope([signer_key], envelope):
        raise ValueError("the envelope carries no signature by the given signer key")
    blob = envelope.to_bytes()
    blob_digest = sha256_digest(blob)
    predicate_type = statement["predicateType"]

    def already_there(layer: Mapping[str, Any], reader: BlobReader) -> bool:
        if layer.get("mediaType") != DSSE_MEDIA_TYPE:
            return False
        if layer.get("digest") == blob_digest:
            return True
        annotations = layer.get("annotations") or {}
        if signer_key is None or annotations.get(PREDICATE_TYPE_ANNOTATION) != predicate_type:
            return False
        try:
            existing = Envelope.from_bytes(reader.read(repository, layer["digest"], layer.get("size")))
        except (MalformedSignature, RegistryError, KeyError):
            return False  # an unreadable neighbour is kept as it is, and ours is added
        return existing.payload == envelope.payload and verify_envelope([signer_key], existing)

    layer = {
        "mediaType": DSSE_MEDIA_TYPE,
        "digest": blob_digest,
        "size": len(blob),
        # cosign writes an empty signature annotation on attestations: the signature is in the envelope
        "annotations": {PREDICATE_TYPE_ANNOTATION: predicate_type, SIGNATURE_ANNOTATION: ""},
    }
    return _append_layer(client, repository, ref, attestation_tag(ref.digest), layer, blob, already_there)


def read_attestations(client: RegistryClient, repository: str, digest: str) -> list[AttestationLayer] | None:
    """The DSSE layers of ``digest``'s ``.att`` manifest; ``None`` when there is none."""
    found = _read_manifest(client, repository, attestation_tag(digest))
    if found is None:
        return None
    document, _ = found
    with BlobReader(client) as reader:
        return [_attestation_layer(reader, repository, layer) for layer in _layers_of(document, DSSE_MEDIA_TYPE)]


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


# -- internals -------------------------------------------------------------------------------------


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


def resolve_subject(client: RegistryClient, repository: str, subject: Subject) -> ManifestRef:
    """The subject's digest, media type and size: a :class:`ManifestRef` is taken as given, a
    digest is looked up (:class:`ManifestNotFound` when absent). Refuses tags (``ValueError``):
    signatures are about content, and a tag can move."""
    if isinstance(subject, ManifestRef):
        validate_digest(subject.digest)
        return subject
    if not is_digest(subject):
        raise ValueError(f"sign a manifest digest (sha256:...), not the tag {subject!r}: a tag can move")
    ref = client.head_manifest(repository, subject)
    if ref is None:
        raise ManifestNotFound(
            f"manifest {repository}@{subject} not found on {client.host}; push the image before signing it",
            registry=client.host,
            status_code=404,
        )
    return ref


def _append_layer(
    client: RegistryClient,
    repository: str,
    subject: ManifestRef,
    tag: str,
    layer: dict[str, Any],
    blob: bytes,
    already_there: Callable[[Mapping[str, Any], BlobReader], bool],
) -> AttachResult:
    wrote = False
    with BlobReader(client) as reader:
        for _ in range(MAX_MERGE_ATTEMPTS):
            found = _read_manifest(client, repository, tag)
            document, current = found if found is not None else ({}, None)
            layers = list(_all_layers(document))
            if any(already_there(existing, reader) for existing in layers):
                return AttachResult(manifest_digest=current or "", added=wrote, layers=len(layers))
            client.push_blob(repository, layer["digest"], layer["size"], blob)
            body = _signature_manifest(client, repository, subject, [*layers, layer], document)
            digest = client.put_manifest(repository, tag, body, OCI_MANIFEST)
            wrote = True
            now = client.head_manifest(repository, tag)
            if now is not None and now.digest == digest:
                return AttachResult(manifest_digest=digest, added=True, layers=len(layers) + 1)
            logger.info("%s:%s moved while it was being extended; merging again", repository, tag)
    raise SigningError(
        f"{repository}:{tag} kept changing while this signature was being added ({MAX_MERGE_ATTEMPTS} attempts); "
        "serialise signing of the same image and try again"
    )


def _signature_manifest(
    client: RegistryClient,
    repository: str,
    subject: ManifestRef,
    layers: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Any],
) -> bytes:
    config = canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        }
    )
    config_digest = sha256_digest(config)
    client.push_blob(repository, config_digest, len(config), config)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [dict(layer) for layer in layers],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    }
    if isinstance(previous.get("annotations"), dict):
        document["annotations"] = previous["annotations"]
    return canonical_json(document)


def _read_manifest(client: RegistryClient, repository: str, tag: str) -> tuple[dict[str, Any], str] | None:
    try:
        body, _, digest = client.get_manifest(repository, tag)
    except ManifestNotFound:
        return None
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MalformedSignature(f"{repository}:{tag} is not a JSON manifest: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("layers", []), list):
        raise MalformedSignature(
            f"{repository}:{tag} is not an image manifest (no layer list); delete it and sign again"
        )
    return document, digest


def _all_layers(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return [layer for layer in document.get("layers") or () if isinstance(layer, dict)]


def _layers_of(document: Mapping[str, Any], media_type: str) -> list[Mapping[str, Any]]:
    return [layer for layer in _all_layers(document) if layer.get("mediaType") == media_type]


def _annotation(layer: Mapping[str, Any], name: str) -> str | None:
    annotations = layer.get("annotations")
    value = annotations.get(name) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def _descriptor_digest(layer: Mapping[str, Any]) -> tuple[str, int | None]:
    digest = layer.get("digest")
    if not isinstance(digest, str) or not is_digest(digest):
        raise MalformedSignature(f"a layer has no valid digest ({digest!r})")
    size = layer.get("size")
    return digest, size if isinstance(size, int) else None


def _signature_layer(reader: BlobReader, repository: str, layer: Mapping[str, Any]) -> SignatureLayer:
    digest, size = _descriptor_digest(layer)
    signature = _annotation(layer, SIGNATURE_ANNOTATION)
    if not signature:
        raise MalformedSignature(f"layer {digest} has no {SIGNATURE_ANNOTATION} annotation")
    annotations = layer.get("annotations") or {}
    return SignatureLayer(reader.read(repository, digest, size), signature, digest, dict(annotations))


def _attestation_layer(reader: BlobReader, repository: str, layer: Mapping[str, Any]) -> AttestationLayer:
    digest, size = _descriptor_digest(layer)
    envelope = Envelope.from_bytes(reader.read(repository, digest, size))
    return AttestationLayer(envelope, _annotation(layer, PREDICATE_TYPE_ANNOTATION) or "", digest)


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
