"""The admission use case: an AdmissionReview in, an AdmissionReview out, logged and counted.

Parse the review (:func:`.admission.parse_review`: :class:`.admission.MalformedReview` otherwise),
read what we hold about its images (:func:`.records.gather`, constant queries), decide
(:func:`.decisions.judge_review`), render. ``validate`` answers the decision; ``mutate`` never
refuses (that is the validating webhook's job) and only pins, where ``ADMISSION_PIN_NAMESPACES``
asks for it. Nothing is written: a ``dryRun`` review is answered exactly like any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from releases.observability import metrics

from .admission import AdmissionRequest, MalformedReview, parse_review, render_review
from .decisions import ReviewDecision, judge_review, parse_all
from .policy import current_policy
from .records import gather
from .references import Reference

logger = logging.getLogger("releases.trust.admission")
VALIDATE, MUTATE = "validate", "mutate"


@dataclass(frozen=True)
class ReviewAnswer:
    body: dict[str, Any]
    request: AdmissionRequest
    decision: ReviewDecision
    outcome: str


def answer_review(document: Any, *, webhook: str) -> ReviewAnswer:
    """The AdmissionReview answering ``document`` for the ``validate`` or ``mutate`` webhook.
    Raises :class:`MalformedReview` (logged and counted) when the document is not a review."""
    try:
        request = parse_review(document)
    except MalformedReview as error:
        metrics.ADMISSION_REVIEWS.labels(webhook=webhook, outcome="malformed").inc()
        logger.warning("admission %s: malformed review refused: %s", webhook, error)
        raise
    policy = current_policy()
    parsed = parse_all(image.reference for image in request.images)
    records = gather([ref for ref in parsed.values() if isinstance(ref, Reference)], namespace=policy.namespace)
    pin = webhook == MUTATE and policy.pins_in(request.namespace)
    decision = judge_review(request, parsed, records, policy, pin=pin)
    if webhook == MUTATE:
        outcome = "pinned" if decision.patch else "allowed"
        body = render_review(request.uid, allowed=True, patch=decision.patch)
    else:
        outcome = decision.outcome
        body = render_review(
            request.uid, allowed=decision.allowed, message=decision.message, warnings=decision.warnings
        )
    metrics.ADMISSION_REVIEWS.labels(webhook=webhook, outcome=outcome).inc()
    subject = f"{request.operation} {request.kind} {request.namespace}/{request.name}"
    dry = " (dry run)" if request.dry_run else ""
    if outcome in ("refused", "warned"):
        logger.warning(
            "admission %s %s%s uid=%s: %s: %s", webhook, subject, dry, request.uid, outcome, decision.message
        )
    else:
        images = ", ".join(image.reference for image in request.images) or "no images"
        pins = f"; pinned {len(decision.patch)}" if decision.patch else ""
        logger.info("admission %s %s%s uid=%s: %s (%s)%s", webhook, subject, dry, request.uid, outcome, images, pins)
    return ReviewAnswer(body, request, decision, outcome)
