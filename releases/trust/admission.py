"""The ``admission.k8s.io/v1`` AdmissionReview protocol: the request parsed into a small typed
value, the answer rendered from a decision. No Django, no database: plain data in, plain data out.

The images of a review are those of every ``containers``, ``initContainers`` and
``ephemeralContainers`` entry of the pod spec the object's kind carries: a Pod's own, or the pod
template of a Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, or a
CronJob's job template. Each is kept with the JSON pointer of its ``image`` field, which a
JSONPatch of the mutating webhook replaces.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
#: Where each kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
#: Operations whose object is judged; DELETE and CONNECT change no image.
JUDGED_OPERATIONS = ("CREATE", "UPDATE")
#: The API server shows a warning of at most this many characters (longer ones are cut).
WARNING_MAX = 256


class MalformedReview(ValueError):
    """A body that is not an AdmissionReview we can judge; ``problems`` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ContainerImage:
    """One container's ``image``: ``pointer`` is the JSON pointer of the field (for a JSONPatch),
    ``where`` says it in words (``spec.template.spec.containers[0] (web)``)."""

    reference: str
    pointer: str
    where: str


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """What a review asks: the ``uid`` to echo, who and what, and the images of the object.

    ``inspected`` is false for a kind without a pod spec we know (the webhook configuration asks
    only for the kinds we know). ``previous`` holds the images of ``oldObject`` on an UPDATE.
    """

    uid: str
    kind: str
    namespace: str
    name: str
    operation: str
    dry_run: bool
    images: tuple[ContainerImage, ...]
    previous: frozenset[str]
    inspected: bool


def _pointer(path: Sequence[str | int]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _pod_spec(obj: Mapping[str, Any], kind: str, problems: list[str], label: str) -> tuple[Any, tuple[str, ...]]:
    path = POD_SPEC_PATHS[kind]
    node: Any = obj
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping):
            problems.append(f"{label}.{'.'.join(path[:depth])} is not an object")
            return None, path
        node = node.get(key)
        if node is None:
            return None, path  # no pod spec: nothing to run, nothing to judge
    if not isinstance(node, Mapping):
        problems.append(f"{label}.{'.'.join(path)} is not an object")
        return None, path
    return node, path


def _images(obj: Any, kind: str, problems: list[str], label: str) -> list[ContainerImage]:
    if not isinstance(obj, Mapping):
        problems.append(f"{label} is not an object")
        return []
    spec, path = _pod_spec(obj, kind, problems, label)
    if spec is None:
        return []
    found = []
    for key in CONTAINER_LISTS:
        containers = spec.get(key)
        if containers is None:
            continue
        if not isinstance(containers, list):
            problems.append(f"{label}.{_dotted([*path, key])} is not a list")
            continue
        # The list's pointer and dotted path once; each container appends its position.
        pointer, dotted = _pointer([*path, key]), _dotted([*path, key])
        for position, container in enumerate(containers):
            where = f"{dotted}[{position}]"
            if not isinstance(container, Mapping):
                problems.append(f"{label}.{where} is not an object")
                continue
            image = container.get("image")
            if image is not None and not isinstance(image, str):
                problems.append(f"{label}.{where}.image is not a string")
                continue
            name = container.get("name")
            described = where + (f" ({name})" if isinstance(name, str) and name else "")
            found.append(ContainerImage(image or "", f"{pointer}/{position}/image", described))
    return found


def parse_review(document: Any) -> AdmissionRequest:
    """The request of an ``admission.k8s.io/v1`` AdmissionReview, or :class:`MalformedReview`
    listing every problem (wrong apiVersion or kind, no request, no uid, an object of a judged
    operation missing or shaped wrong)."""
    if not isinstance(document, Mapping):
        raise MalformedReview(["the body is not a JSON object; send an admission.k8s.io/v1 AdmissionReview"])
    problems = []
    if document.get("apiVersion") != API_VERSION:
        problems.append(
            f"apiVersion is {document.get('apiVersion')!r}, not {API_VERSION!r}; set admissionReviewVersions: [v1]"
        )
    if document.get("kind") != KIND:
        problems.append(f"kind is {document.get('kind')!r}, not {KIND!r}")
    request = document.get("request")
    if not isinstance(request, Mapping):
        raise MalformedReview([*problems, "request is missing or not an object"])
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        problems.append("request.uid is missing; the answer must echo it")
    operation = request.get("operation")
    if not isinstance(operation, str) or not operation:
        problems.append("request.operation is missing")
    kind_field = request.get("kind")
    kind = kind_field.get("kind") if isinstance(kind_field, Mapping) else None
    if not isinstance(kind, str) or not kind:
        problems.append("request.kind.kind is missing")
    namespace = request.get("namespace") or ""
    name = request.get("name") or ""
    if not isinstance(namespace, str) or not isinstance(name, str):
        problems.append("request.namespace and request.name must be strings")
        namespace, name = str(namespace), str(name)
    dry_run = request.get("dryRun", False)
    if dry_run is None:
        dry_run = False
    if not isinstance(dry_run, bool):
        problems.append("request.dryRun must be true or false")
    inspected = isinstance(kind, str) and kind in POD_SPEC_PATHS
    images: list[ContainerImage] = []
    previous: list[ContainerImage] = []
    if inspected and operation in JUDGED_OPERATIONS:
        obj = request.get("object")
        if obj is None:
            problems.append(f"request.object is missing for a {operation}")
        else:
            images = _images(obj, kind, problems, "request.object")
        old = request.get("oldObject")
        if operation == "UPDATE" and old is not None:
            previous = _images(old, kind, problems, "request.oldObject")
    if problems:
        raise MalformedReview(problems)
    return AdmissionRequest(
        uid=uid,
        kind=kind,
        namespace=namespace,
        name=name or _object_name(request.get("object")),
        operation=operation,
        dry_run=bool(dry_run),
        images=tuple(images),
        previous=frozenset(image.reference for image in previous),
        inspected=inspected,
    )


def _object_name(obj: Any) -> str:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    if isinstance(metadata, Mapping):
        return str(metadata.get("name") or metadata.get("generateName") or "")
    return ""


def _warning(text: str) -> str:
    return text if len(text) <= WARNING_MAX else text[: WARNING_MAX - 1] + "…"


def render_review(
    uid: str,
    *,
    allowed: bool,
    message: str = "",
    code: int = 403,
    warnings: Sequence[str] = (),
    patch: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The AdmissionReview answering ``uid``: ``allowed``, a ``status`` (code and message) when
    refused, ``warnings``, and a base64 JSONPatch when ``patch`` has operations."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "message": message}
    elif message:
        response["status"] = {"code": 200, "message": message}
    if warnings:
        response["warnings"] = [_warning(text) for text in warnings]
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(list(patch), separators=(",", ":")).encode()).decode()
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
