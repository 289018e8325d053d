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
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from releases.oci.client import RegistryClient
from releases.oci.digest import sha256_digest
from releases.oci.errors import ManifestNotFound, RegistryError
from releases.oci.manifest import ManifestRef, canonical_json
from releases.oci.media_types import OCI_CONFIG, OCI_MANIFEST
from releases.oci.names import is_digest, validate_digest
from releases.signing.blobs import BlobReader
from releases.signing.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, sign_envelope, verify_envelope
from releases.signing.errors import MalformedSignature, SigningError
from releases.signing.intoto import in_toto_statement, parse_statement, statement_names_digest
from releases.signing.keys import PublicKeyLike, load_public_key
from releases.signing.simple_signing import (
    parse_simple_signing_payload,
    sign,
    simple_signing_payload,
    verify,
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


# -- internals -------------------------------------------------------------------------------------


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
