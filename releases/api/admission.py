"""The admission webhooks the Kubernetes API server calls: ``POST /admission/validate/`` and
``POST /admission/mutate/`` (``releases.trust.reviews``).

Callers authenticate with ``Authorization: Bearer <ADMISSION_TOKEN>`` (what a kubeconfig for
webhooks sends): none gets 401, another token 403, compared in constant time. A body that is not
an AdmissionReview gets 400 naming every problem; any review gets an AdmissionReview with its uid.
"""

from __future__ import annotations

import hmac

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.observability import metrics
from releases.trust.admission import MalformedReview
from releases.trust.reviews import MUTATE, VALIDATE, answer_review


def _refusal(status: int, message: str, webhook: str, outcome: str) -> JsonResponse:
    metrics.ADMISSION_REVIEWS.labels(webhook=webhook, outcome=outcome).inc()
    response = JsonResponse({"detail": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="admission"'
    return response


def _unauthorized(request: HttpRequest, webhook: str) -> JsonResponse | None:
    expected = settings.ADMISSION_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")  # request.headers would copy every header first
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        hint = "" if expected else " (ADMISSION_TOKEN is not set on the service: it admits no caller)"
        return _refusal(401, f"send Authorization: Bearer <ADMISSION_TOKEN>{hint}", webhook, "unauthorized")
    if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return _refusal(403, "this token is not the ADMISSION_TOKEN", webhook, "unauthorized")
    return None


def _answer(request: HttpRequest, webhook: str) -> HttpResponse:
    refused = _unauthorized(request, webhook)
    if refused is not None:
        return refused
    if request.content_type != "application/json":
        return _refusal(400, "send the AdmissionReview as application/json", webhook, "malformed")
    try:
        document = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:  # a ValueError, also for bytes that are not UTF-8
        return _refusal(400, f"the body is not JSON ({error}); send an AdmissionReview", webhook, "malformed")
    try:
        answer = answer_review(document, webhook=webhook)
    except MalformedReview as error:
        body = {"detail": "not an admission.k8s.io/v1 AdmissionReview", "problems": error.problems}
        return JsonResponse(body, status=400)
    # The answer holds strings, booleans and lists alone: orjson writes them as JsonResponse's
    # DjangoJSONEncoder would (UTF-8 rather than ASCII escapes), without an encoder built per call.
    return HttpResponse(orjson.dumps(answer.body), content_type="application/json")


@csrf_exempt
@require_POST
def validate(request: HttpRequest) -> HttpResponse:
    """Allowed only for our published, not withdrawn, signed images (and allowed outside images)."""
    return _answer(request, VALIDATE)


@csrf_exempt
@require_POST
def mutate(request: HttpRequest) -> HttpResponse:
    """Pins our tags to ``tag@digest`` where ``ADMISSION_PIN_NAMESPACES`` asks for it; never refuses."""
    return _answer(request, MUTATE)
