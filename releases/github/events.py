"""GitHub webhooks, plain Python (no Django): ``X-Hub-Signature-256`` verification and ``release`` events.

Decisions for ``release_from_event`` (each ignored event is logged at INFO with its reason):

* Actions: ``published``, ``created`` and ``released`` are handled; everything else is ignored
  (``deleted``, ``unpublished``, ``edited``, and ``prereleased``, which GitHub always sends together with
  ``published`` for a pre-release). GitHub sends up to three of the handled actions for one release
  (created + published + released), so the caller must be idempotent, e.g. keyed on ``version`` (or
  ``release_id``).
* Drafts are ignored: not public, their tag may not exist yet; the same release comes back as
  ``published`` when it is published.
* Pre-releases are accepted and flagged (``prerelease``); the caller decides what they may do.
* ``tag_name`` must hold a semantic version, optionally prefixed by ``v`` and/or a Release Please component
  (``v1.4.0``, ``threek8s-v1.4.0``, ``frontend/v1.2.0``); otherwise the event is ignored (not a Release
  Please release). ``version`` is the bare version.
* ``commit_sha`` is ``release.target_commitish`` only when that is a full (40 or 64 hex) commit sha;
  Release Please usually sends a sha, but a branch name ("main") says nothing about the commit: ``None``,
  and the caller resolves ``tag_name`` in the source repository (``services.commit_of_tag``).
* ``pr_number`` (the release PR) is not in the payload. It is taken from the notes when a line mentions
  releasing this exact version and links a PR after it (``* release 1.4.0 ([#90](...))`` under
  Miscellaneous Chores, ``chore(main): release 1.4.0 (#90)``); otherwise ``None``, and
  ``services.create_release`` reads it from the release commit's subject.
* Malformed payloads (not an object, no ``release`` object, non-string fields) are ignored, never raised on.

``parse_release_event`` gives the same answer plus the reason an event was ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from releases.changelog import ReleaseNotes, parse_release_notes, split_version_label

__all__ = [
    "EVENT_HEADER",
    "HANDLED_ACTIONS",
    "SIGNATURE_HEADER",
    "SIGNATURE_META_KEY",
    "ReleaseEvent",
    "compute_signature",
    "parse_release_event",
    "release_from_event",
    "verify_signature",
]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_META_KEY = "HTTP_X_HUB_SIGNATURE_256"  # the header in Django's request.META
EVENT_HEADER = "X-GitHub-Event"
HANDLED_ACTIONS: frozenset[str] = frozenset({"published", "created", "released"})

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_COMMIT_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_PR_AFTER_VERSION = re.compile(r"\[#(\d{1,9})\]\([^()\s]*\)|/pull/(\d{1,9})\b|\(#(\d{1,9})\)")


def compute_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), bytes(body), hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``X-Hub-Signature-256``) is the HMAC-SHA256 of the raw ``body`` under ``secret``.

    False for an empty secret (an unconfigured secret must not accept everything), a missing header, or
    one that is not exactly ``sha256=`` + 64 hex digits (``sha1=`` included). Constant-time comparison.
    ``body`` must be the raw request bytes (``request.body``), not re-encoded JSON.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be the raw request bytes, not {type(body).__name__}")
    if not secret or not isinstance(secret, str) or not isinstance(header, str):
        return False
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    expected = compute_signature(secret, bytes(body)).removeprefix("sha256=")
    return hmac.compare_digest(expected.encode("ascii"), match.group(1).lower().encode("ascii"))


@dataclass(frozen=True)
class ReleaseEvent:
    """A GitHub ``release`` webhook event we act on. See the module docstring for how each field is derived."""

    version: str
    commit_sha: str | None
    notes_markdown: str
    pr_number: int | None
    action: str
    tag_name: str = ""
    component: str | None = None
    prerelease: bool = False
    repository: str | None = None
    release_id: int | None = None

    def notes(self) -> ReleaseNotes:
        return parse_release_notes(self.notes_markdown)


def _release_pr_number(body: str, version: str) -> int | None:
    mention = re.compile(
        r"\brelease\b[^\n#]{0,80}?(?<![0-9A-Za-z.])v?" + re.escape(version) + r"(?![0-9A-Za-z+-]|\.[0-9A-Za-z])",
        re.IGNORECASE,
    )
    for line in body.split("\n"):
        if len(line) > 2000:
            continue
        found = mention.search(line)
        if found is None:
            continue
        pr = _PR_AFTER_VERSION.search(line, found.end())
        if pr is not None:
            return int(next(group for group in pr.groups() if group))
    return None


def _ignore(reason: str) -> tuple[None, str]:
    logger.info("ignoring GitHub release event: %s", reason)
    return None, reason


def release_from_event(payload: Mapping[str, Any]) -> ReleaseEvent | None:
    """Turn a GitHub ``release`` webhook payload into a ``ReleaseEvent``, or ``None`` for events we ignore."""
    return parse_release_event(payload)[0]


def parse_release_event(payload: Mapping[str, Any]) -> tuple[ReleaseEvent | None, str]:
    """Like ``release_from_event``, with the reason when the event is ignored (``""`` when it is not), e.g.
    ``"release 'v1.4.0' is a draft"``, for the webhook's answer. Never raises."""
    if not isinstance(payload, Mapping):
        return _ignore("the payload is not a JSON object")
    action = payload.get("action")
    if not isinstance(action, str) or action not in HANDLED_ACTIONS:
        return _ignore(f"release action {action!r} is ignored; handled: {', '.join(sorted(HANDLED_ACTIONS))}")
    release = payload.get("release")
    if not isinstance(release, Mapping):
        return _ignore("the payload has no release object")
    tag = release.get("tag_name")
    if release.get("draft"):
        return _ignore(f"release {tag!r} is a draft; it is handled when published")
    if not isinstance(tag, str) or not tag.strip():
        return _ignore("the release has no tag_name")
    split = split_version_label(tag)
    if split is None:
        return _ignore(f"tag {tag!r} holds no semantic version (expected e.g. v1.4.0 or component-v1.4.0)")
    component, version = split

    commitish = release.get("target_commitish")
    commit_sha = commitish.lower() if isinstance(commitish, str) and _COMMIT_SHA.fullmatch(commitish) else None
    body = release.get("body")
    notes = body.replace("\r\n", "\n") if isinstance(body, str) else ""
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, Mapping) else None
    release_id = release.get("id")
    event = ReleaseEvent(
        version=version,
        commit_sha=commit_sha,
        notes_markdown=notes,
        pr_number=_release_pr_number(notes, version),
        action=action,
        tag_name=tag,
        component=component,
        prerelease=bool(release.get("prerelease")),
        repository=full_name if isinstance(full_name, str) else None,
        release_id=release_id if isinstance(release_id, int) and not isinstance(release_id, bool) else None,
    )
    return event, ""
