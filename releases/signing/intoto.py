"""in-toto Statement v1 and the SLSA provenance v1 predicate.

A statement says "these subjects (by digest) have this predicate"; the predicate here is SLSA
provenance: who built the image, from which source commit, with which parameters and base image,
and when. Both are plain dicts ready for :func:`releases.oci.manifest.canonical_json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from releases.oci.names import validate_digest
from releases.redaction import redact_url
from releases.signing.errors import MalformedSignature

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: Older statements (cosign attest writes these); accepted when reading.
STATEMENT_TYPES_ACCEPTED = frozenset({STATEMENT_TYPE, "https://in-toto.io/Statement/v0.1"})
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"


def digest_set(digest: str) -> dict[str, str]:
    """``sha256:<hex>`` as an in-toto DigestSet, ``{"sha256": "<hex>"}``."""
    validate_digest(digest)
    algorithm, _, hexdigest = digest.partition(":")
    return {algorithm: hexdigest}


def in_toto_statement(
    subject_name: str, subject_digest: str, predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1 about one subject (e.g. an image repository and manifest digest).

    Refuses (``ValueError``) an empty subject name or predicate type and a malformed digest.
    """
    if not subject_name:
        raise ValueError("subject_name must name the artifact, e.g. registry.example.com/team/app")
    if not predicate_type:
        raise ValueError("predicate_type must be a URI such as " + SLSA_PROVENANCE_V1)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": digest_set(subject_digest)}],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def parse_statement(payload: bytes) -> dict[str, Any]:
    """Read an in-toto statement; refuses (:class:`MalformedSignature`) anything else."""
    try:
        document = json.loads(payload)
    except ValueError as exc:
        raise MalformedSignature(f"the attestation payload is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("_type") not in STATEMENT_TYPES_ACCEPTED:
        kind = document.get("_type") if isinstance(document, dict) else type(document).__name__
        raise MalformedSignature(f"the attestation payload is not an in-toto statement (_type {kind!r})")
    if not isinstance(document.get("subject"), list) or not isinstance(document.get("predicateType"), str):
        raise MalformedSignature("the in-toto statement has no subject list or no predicateType")
    return document


def statement_names_digest(statement: Mapping[str, Any], digest: str) -> bool:
    """True when one of the statement's subjects has ``digest`` (``sha256:<hex>``)."""
    algorithm, _, hexdigest = digest.partition(":")
    for subject in statement.get("subject") or ():
        digests = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digests, dict) and digests.get(algorithm) == hexdigest:
            return True
    return False


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (datetime.now(UTC)), not naive")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slsa_provenance(
    *,
    builder_id: str,
    build_type: str,
    source_repository: str,
    commit_sha: str,
    version: str,
    started_on: datetime,
    finished_on: datetime,
    build_args: Mapping[str, str] | None = None,
    base_image: str | None = None,
    base_image_digest: str | None = None,
    invocation_id: str | None = None,
    stage_bases: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A SLSA provenance v1 predicate for an image build.

    ``externalParameters`` carries the source repository (credentials stripped, see
    :func:`releases.redaction.redact_url`), the commit SHA, the release version and the build args;
    ``resolvedDependencies`` the source commit and, when known, the base image by digest, then the
    other stages' bases (``stage_bases``: ``(name, digest)``, each once);
    ``runDetails`` the builder id and the start/finish times (UTC, RFC 3339). Build args are
    recorded as given: never pass secrets as build args. Refuses (``ValueError``) a commit SHA
    that is not 40 or 64 hex digits, a malformed base image digest, naive datetimes and a finish
    before the start.
    """
    sha = commit_sha.lower()
    if len(sha) not in (40, 64) or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"commit_sha must be a full git commit SHA (40 hex digits), got {commit_sha!r}")
    metadata: dict[str, Any] = {"startedOn": _timestamp(started_on), "finishedOn": _timestamp(finished_on)}
    if finished_on < started_on:
        raise ValueError(f"the build finished ({finished_on.isoformat()}) before it started ({started_on.isoformat()})")
    source = redact_url(source_repository)
    dependencies: list[dict[str, Any]] = [
        {
            "uri": f"git+{source}@{sha}" if not source.startswith("git+") else f"{source}@{sha}",
            "digest": {"gitCommit": sha},
        },
    ]
    if base_image_digest is not None:
        dependency: dict[str, Any] = {"digest": digest_set(base_image_digest)}
        if base_image:
            dependency["name"] = base_image
        dependencies.append(dependency)
    listed = {(base_image, base_image_digest)}
    for name, digest in stage_bases:
        if (name, digest) not in listed:
            listed.add((name, digest))
            dependencies.append({"name": name, "digest": digest_set(digest)})
    if invocation_id:
        metadata["invocationId"] = invocation_id
    return {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": {
                "source": {"repository": source, "commit": sha},
                "version": version,
                "buildArgs": dict(sorted((build_args or {}).items())),
            },
            "internalParameters": {},
            "resolvedDependencies": dependencies,
        },
        "runDetails": {"builder": {"id": builder_id}, "metadata": metadata},
    }
