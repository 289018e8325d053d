"""The admission webhooks over HTTP, with AdmissionReview documents as the API server sends them:
the uid echoed, the bearer token, 400 for what is not a review, the JSONPatch of the mutating
webhook applied with a JSON-patch library, a constant number of queries per review, every decision
counted in the metrics."""

from __future__ import annotations

import base64
import json

import jsonpatch
import pytest
from django.test import Client
from prometheus_client import REGISTRY

from .conftest import TOKEN, deployment, ours, publish, review

pytestmark = pytest.mark.django_db


def post(client: Client, path: str, body, *, token: str | None = TOKEN, content_type="application/json"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data=data, content_type=content_type, **headers)


def counted(webhook: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "release_registry_admission_reviews_total", {"webhook": webhook, "outcome": outcome}
    )
    return value or 0.0


def test_an_allowed_review_echoes_the_uid(client, admission_token):
    publish("1.0.0")
    document = review(deployment(ours("threek8s-backend", ":1.0.0")), uid="705ab4f5-6393-11e8-b7cc-42010a800002")
    before = counted("validate", "allowed")
    response = post(client, "/admission/validate/", document)
    assert response.status_code == 200
    assert response.json() == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True},
    }
    assert counted("validate", "allowed") == before + 1


def test_a_refusal_is_403_in_the_status_naming_each_image_and_why(client, admission_token, caplog):
    publish("1.0.0")
    document = review(deployment(ours("threek8s-backend", ":1.0.0"), ours("threek8s-backend", ":2.0.0"), "busybox"))
    before = counted("validate", "refused")
    answer = post(client, "/admission/validate/", document).json()["response"]
    assert answer["uid"] == document["request"]["uid"]
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403
    message = answer["status"]["message"]
    assert message.startswith("Deployment shop/web refused by the release registry: ")
    assert f"containers[1] (c1): {ours('threek8s-backend', ':2.0.0')}: unknown" in message
    assert "containers[2] (c2): busybox: outside" in message
    assert ":1.0.0:" not in message
    assert counted("validate", "refused") == before + 1
    assert any(
        "refused" in record.getMessage() and document["request"]["uid"] in record.getMessage()
        for record in caplog.records
    )


def test_warn_namespaces_answer_allowed_with_warnings(client, admission_token, settings):
    settings.ADMISSION_WARN_NAMESPACES = ["staging"]
    answer = post(client, "/admission/validate/", review(deployment("busybox"), namespace="staging")).json()
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == [
        f"spec.template.spec.containers[0] (c0): busybox: outside {settings.REGISTRY_NAMESPACE} and not allowed "
        "by ADMISSION_ALLOWED_IMAGES"
    ]


def test_a_dry_run_is_answered_alike_and_writes_nothing(client, admission_token, django_assert_max_num_queries):
    publish("1.0.0")
    document = review(deployment(ours("threek8s-backend", ":3.0.0")), dry_run=True)
    answer = post(client, "/admission/validate/", document).json()["response"]
    assert answer["allowed"] is False and "unknown" in answer["status"]["message"]


@pytest.mark.parametrize("count", [1, 3, 30])
def test_a_review_costs_the_same_queries_whatever_the_number_of_containers(
    count, client, admission_token, django_assert_num_queries
):
    release = publish("1.0.0")
    publish("1.1.0")
    images = [
        ours("threek8s-backend", ":1.0.0"),
        ours("threek8s-frontend"),  # latest
        ours("threek8s-frontend", f"@{release.platform(release.frontend)}"),  # a platform digest
        "busybox",
    ] * count
    document = review(deployment(*images))
    # latest; images by tag, index or platform digest (each with its withdrawal and open findings)
    with django_assert_num_queries(2):
        response = post(client, "/admission/validate/", document)
    assert response.status_code == 200
    assert "busybox" in response.json()["response"]["status"]["message"]


def test_callers_without_the_token_get_401_and_with_another_403(client, admission_token):
    document = review(deployment("busybox"))
    missing = post(client, "/admission/validate/", document, token=None)
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert post(client, "/admission/validate/", document, token="not-the-token-0123456789").status_code == 403
    assert post(client, "/admission/mutate/", document, token="not-the-token-0123456789").status_code == 403
    response = client.post(
        "/admission/validate/", data=json.dumps(document), content_type="application/json", HTTP_AUTHORIZATION="Basic x"
    )
    assert response.status_code == 401


def test_without_an_admission_token_configured_nobody_is_admitted(client, settings):
    settings.ADMISSION_TOKEN = ""
    response = post(client, "/admission/validate/", review(deployment("busybox")), token=None)
    assert response.status_code == 401 and "ADMISSION_TOKEN is not set" in response.json()["detail"]
    assert (
        post(client, "/admission/validate/", review(deployment("busybox")), token="anything-at-all-123").status_code
        == 403
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "the body is not JSON"),
        ([], "not a JSON object"),
        (
            {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
            "admissionReviewVersions",
        ),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request is missing"),
    ],
)
def test_what_is_not_an_admission_review_gets_400_naming_the_problem(client, admission_token, body, problem):
    response = post(client, "/admission/validate/", body)
    assert response.status_code == 400
    assert problem in json.dumps(response.json())


def test_a_malformed_review_lists_every_problem_at_once(client, admission_token):
    document = review(deployment("busybox"))
    del document["request"]["uid"]
    document["request"]["object"]["spec"]["template"]["spec"]["containers"] = {"name": "x"}
    document["request"]["dryRun"] = "yes"
    problems = post(client, "/admission/validate/", document).json()["problems"]
    assert problems == [
        "request.uid is missing; the answer must echo it",
        "request.dryRun must be true or false",
        "request.object.spec.template.spec.containers is not a list",
    ]


def test_only_post_is_answered(client, admission_token):
    assert client.get("/admission/validate/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def apply(document: dict, answer: dict) -> dict:
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    return jsonpatch.JsonPatch(patch).apply(document["request"]["object"])


def test_mutate_pins_our_tags_to_tag_at_digest_where_asked(client, admission_token, settings):
    settings.ADMISSION_PIN_NAMESPACES = ["shop"]
    release = publish("1.0.0")
    newest = publish("1.1.0")
    pinned_already = ours("threek8s-frontend", f":1.0.0@{release.frontend.digest}")
    document = review(
        deployment(
            ours("threek8s-backend", ":1.0.0"), "busybox:1.36", pinned_already, init=(ours("threek8s-frontend"),)
        )
    )
    before = counted("mutate", "pinned")
    answer = post(client, "/admission/mutate/", document).json()
    assert answer["response"]["uid"] == document["request"]["uid"]
    assert answer["response"]["allowed"] is True and answer["response"]["patchType"] == "JSONPatch"
    result = apply(document, answer)
    spec = result["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["containers"]] == [
        ours("threek8s-backend", f":1.0.0@{release.backend.digest}"),
        "busybox:1.36",
        pinned_already,
    ]
    assert spec["initContainers"][0]["image"] == ours("threek8s-frontend", f":latest@{newest.frontend.digest}")
    assert counted("mutate", "pinned") == before + 1
    # what mutate wrote, validate admits
    document["request"]["object"] = result
    settings.ADMISSION_ALLOWED_IMAGES = ["docker.io/library/busybox:*"]
    assert post(client, "/admission/validate/", document).json()["response"]["allowed"] is True


def test_mutate_changes_nothing_where_pinning_is_not_asked_for_nor_what_is_not_ours_to_pin(
    client, admission_token, settings
):
    publish("1.0.0")
    document = review(deployment(ours("threek8s-backend", ":1.0.0")))
    answer = post(client, "/admission/mutate/", document).json()["response"]
    assert answer == {"uid": document["request"]["uid"], "allowed": True}
    settings.ADMISSION_PIN_NAMESPACES = ["*"]
    unknown = review(deployment(ours("threek8s-backend", ":7.7.7")))
    answer = post(client, "/admission/mutate/", unknown).json()["response"]
    assert answer == {"uid": unknown["request"]["uid"], "allowed": True}  # validate refuses it; mutate never does
