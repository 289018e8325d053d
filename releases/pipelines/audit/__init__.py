"""The scheduled tag-immutability audit: every published tag must still point at its recorded digest.

A run is split into batches (``plan_shards``: primary-key ranges of published images and indexed
charts per registry host, each host's ``latest`` tags, and the signatures of each range) that
any worker of the ``audits`` queue checks (``check_shard``), a Celery chord closing the run
(``finish_run``) when all are done; ``run_audit`` does the same in one process. Each batch
streams its tags from the database into ``releases.audit.audit_tags`` (concurrent HEADs with
connection reuse; memory flat whatever the batch size) and turns the results into
``AuditFinding`` rows: opened when the registry disagrees, kept open across runs, resolved when
it agrees again. Batches cover disjoint tags, so they never write the same finding. Each result
is written on its own, so a crash mid-run leaves every finding as true as the last run that
checked it.

Two runs never overlap: starts are serialised by a PostgreSQL advisory lock, and the run row is
the lock for the run's duration (at most one ``running`` row, a database constraint, kept alive
by its batches' heartbeats). A run whose workers died is closed ``crashed`` by the next start.
A registry's 429/Retry-After pauses every batch of the run (``SharedThrottle``).

The modules: ``planning`` (runs and their batches), ``batches`` (checking one, closing the
run), ``findings`` (what is found and recorded), ``signatures`` (signatures and attestations).
"""

from __future__ import annotations

from releases.pipelines.audit.batches import (
    SharedThrottle,
    check_shard,
    check_tags,
    crash_reason,
    fail_run,
    finish_run,
    run_audit,
    shared_throttle,
    throttle_key,
)
from releases.pipelines.audit.findings import (
    ATTESTATION_TYPES,
    LATEST_TYPES,
    SEVERITY,
    SIGNATURE_TYPES,
    TAG_TYPES,
    FindingBook,
    built_platforms,
    check_chart_app_versions,
    findings_of,
    highest_published_images,
)
from releases.pipelines.audit.planning import (
    HEARTBEAT_EVERY,
    HOST_SIGNATURES,
    SIGNATURES,
    AuditAlreadyRunning,
    Shard,
    ShardOutcome,
    plan_shards,
    registry_hosts,
    signatures_to_check,
    stale_after_seconds,
    start_run,
)
from releases.pipelines.audit.signatures import (
    REQUIRED_ATTESTATIONS,
    SIGNATURE_KEYS,
    SignedManifest,
    check_signatures,
    record_signature_problems,
    record_signature_result,
    signature_tags,
    signed_manifests,
    unrecorded_hint,
    verify_signed_manifest,
)

__all__ = [
    "ATTESTATION_TYPES",
    "AuditAlreadyRunning",
    "FindingBook",
    "HEARTBEAT_EVERY",
    "HOST_SIGNATURES",
    "LATEST_TYPES",
    "REQUIRED_ATTESTATIONS",
    "SEVERITY",
    "SIGNATURES",
    "SIGNATURE_KEYS",
    "SIGNATURE_TYPES",
    "Shard",
    "ShardOutcome",
    "SharedThrottle",
    "SignedManifest",
    "TAG_TYPES",
    "built_platforms",
    "check_chart_app_versions",
    "check_shard",
    "check_signatures",
    "check_tags",
    "crash_reason",
    "fail_run",
    "findings_of",
    "finish_run",
    "highest_published_images",
    "plan_shards",
    "record_signature_problems",
    "record_signature_result",
    "registry_hosts",
    "run_audit",
    "shared_throttle",
    "signature_tags",
    "signatures_to_check",
    "signed_manifests",
    "stale_after_seconds",
    "start_run",
    "throttle_key",
    "unrecorded_hint",
    "verify_signed_manifest",
]
