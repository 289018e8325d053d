"""``POST /hooks/github/``: Release Please's GitHub ``release`` events become releases.

Refuses with 401, writing nothing, anything unsigned or mis-signed (``X-Hub-Signature-256``,
HMAC-SHA256 with ``GITHUB_WEBHOOK_SECRET``, compared in constant time); with 403 a signed event of
another repository than ``GITHUB_REPOSITORY`` (``repository.full_name``, case-insensitive); with 400
a body that is not a JSON object and delivery ids or event names longer than we record. A delivery
id seen before is answered 200 and changes nothing.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases import services
from releases.github.events import parse_release_event, verify_signature
from releases.models import GitHubDelivery, ReleaseVersion
from releases.transitions import TransitionRefused

logger = logging.getLogger(__name__)


def _answer(status: int, detail: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


@csrf_exempt
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        return _answer(401, "GITHUB_WEBHOOK_SECRET is not configured; set it to the webhook's secret")
    if not verify_signature(secret, request.body, request.headers.get("X-Hub-Signature-256")):
        return _answer(401, "missing or invalid X-Hub-Signature-256; check the webhook secret")
    repository = settings.GITHUB_REPOSITORY
    if not repository:
        return _answer(401, "GITHUB_REPOSITORY is not configured; set it to the owner/name whose events are built")
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    event = request.headers.get("X-GitHub-Event", "")
    if not delivery_id:
        return _answer(400, "missing X-GitHub-Delivery header")
    for header, value, field in (
        ("X-GitHub-Delivery", delivery_id, "delivery_id"),
        ("X-GitHub-Event", event, "event"),
    ):
        limit = GitHubDelivery._meta.get_field(field).max_length
        if len(value) > limit:
            return _answer(400, f"{header} is longer than {limit} characters; GitHub's are far shorter")
    if GitHubDelivery.objects.filter(delivery_id=delivery_id).exists():
        return _answer(200, "delivery already processed", duplicate=True)
    try:
        payload = json.loads(request.body)
    except ValueError:
        return _answer(400, "the body is not JSON")
    if not isinstance(payload, dict):
        return _answer(400, "the body is not a JSON object; GitHub sends one per event")
    sender = _repository_of(payload)
    if sender is None or sender.casefold() != repository.casefold():
        return _answer(
            403,
            f"events of {(sender or 'an unnamed repository')[:140]} are refused; this service builds {repository} only",
        )
    if event == "ping":
        return _answer(200, "pong")
    try:
        with transaction.atomic():
            delivery = GitHubDelivery.objects.create(
                delivery_id=delivery_id, event=event, action=str(payload.get("action", ""))[:50]
            )
            status, detail, release = _handle(event, payload)
            delivery.outcome, delivery.release = detail[:255], release
            delivery.save(update_fields=["outcome", "release"])
            if status >= 400:
                transaction.set_rollback(True)
    except IntegrityError:  # the same delivery, concurrently
        return _answer(200, "delivery already processed", duplicate=True)
    return _answer(status, detail, version=release.version if release else None)


def _repository_of(payload: dict) -> str | None:
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    return full_name if isinstance(full_name, str) else None


def _handle(event: str, payload: dict) -> tuple[int, str, ReleaseVersion | None]:
    if event != "release":
        return 202, f"{event or 'unnamed'} events are ignored; only release events create releases", None
    parsed, ignored_because = parse_release_event(payload)
    if parsed is None:
        return 202, ignored_because, None
    existing = ReleaseVersion.objects.filter(version=parsed.version).first()
    if existing is not None:
        return 200, f"release {parsed.version} already exists", existing
    commit_sha = parsed.commit_sha
    if commit_sha is None:  # target_commitish names a branch: the tag says which commit was released
        try:
            commit_sha = services.commit_of_tag(parsed.tag_name)
        except services.TagUnresolved as unresolved:
            return 422, f"the release's target_commitish is a branch, not a commit SHA, and {unresolved}", None
    try:
        release = services.create_release(
            version=parsed.version,
            commit_sha=commit_sha,
            pr_number=parsed.pr_number,
            changelog=parsed.notes_markdown,
            release_notes=parsed.notes_markdown,
        )
    except services.ReleaseExists:
        return 200, f"release {parsed.version} already exists", ReleaseVersion.objects.get(version=parsed.version)
    except ValidationError as error:
        return 422, "; ".join(error.messages), None
    if settings.PUBLISH_ON_WEBHOOK:
        try:
            services.publish_release(release.pk)
        except TransitionRefused as refused:
            return 201, f"release {release.version} created; publishing refused: {'; '.join(refused.reasons)}", release
        return 201, f"release {release.version} created and publishing", release
    return 201, f"release {release.version} created", release
