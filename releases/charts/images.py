"""The container images a rendered chart would run, checked against what a release published.

:func:`deployed_images` walks every rendered manifest for ``containers``, ``initContainers`` and
``ephemeralContainers`` lists, at any depth: that covers every workload kind (Pod, Deployment,
StatefulSet, DaemonSet, ReplicaSet, Job, CronJob's job template, PodTemplate, and custom
resources that embed a pod spec) without a table of kinds to keep up to date.

:func:`deployed_image_problems` sorts them: an image under the registry namespace must be one the
release published, at the release's version or by its digest (a problem otherwise); an image
outside it is a warning unless a glob of ``allowed`` matches it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from releases.charts.chartfile import json_path

CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class DeployedImage:
    """An ``image:`` of a rendered container, and where it is (``Deployment/web: spec...image``)."""

    reference: str
    where: str


@dataclass(frozen=True)
class PublishedImage:
    """An image the release pushed: ``repository`` is ``host/namespace/name``."""

    repository: str
    tag: str
    digest: str

    @property
    def pinned(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class ImageReference:
    """``[host/]path[:tag][@digest]`` split as a container runtime reads it."""

    name: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, reference: str) -> ImageReference:
        name, _, digest = reference.partition("@")
        slash = name.rfind("/")
        colon = name.rfind(":")
        tag = ""
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
        return cls(name=name, tag=tag, digest=digest)

    @property
    def normalized(self) -> str:
        """The fully qualified form (``busybox:1.36`` -> ``docker.io/library/busybox:1.36``)."""
        first, _, rest = self.name.partition("/")
        if not rest:
            name = f"{DOCKER_HUB}/library/{first}"
        elif "." in first or ":" in first or first == "localhost":
            name = self.name
        else:
            name = f"{DOCKER_HUB}/{self.name}"
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def _label(document: Mapping[str, Any], index: int) -> str:
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    return f"{document.get('kind') or f'document {index + 1}'}/{metadata.get('name') or '(unnamed)'}"


def _walk(node: Any, path: list[Any], label: str, found: list[DeployedImage]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CONTAINER_LISTS and isinstance(value, list):
                for position, container in enumerate(value):
                    if isinstance(container, dict):
                        image = container.get("image")
                        where = f"{label}: {json_path([*path, key, position, 'image'])}"
                        found.append(DeployedImage("" if image is None else str(image), where))
            else:
                _walk(value, [*path, key], label, found)
    elif isinstance(node, list):
        for position, item in enumerate(node):
            _walk(item, [*path, position], label, found)


def deployed_images(documents: Iterable[Mapping[str, Any]]) -> list[DeployedImage]:
    """Every container image of the rendered ``documents``, in document order."""
    found: list[DeployedImage] = []
    for index, document in enumerate(documents):
        if isinstance(document, Mapping):
            _walk(dict(document), [], _label(document, index), found)
    return found


def allowed_by(reference: str, allowed: Iterable[str]) -> bool:
    """Whether a glob of ``allowed`` matches ``reference`` as written or fully qualified
    (``busybox:1.36`` is also ``docker.io/library/busybox:1.36``): ``CHART_ALLOWED_IMAGES`` and
    ``ADMISSION_ALLOWED_IMAGES`` read the same way."""
    candidates = (reference, ImageReference.parse(reference).normalized)
    return any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates for pattern in allowed)


def _under(name: str, namespace: str) -> bool:
    return name.startswith(namespace.rstrip("/") + "/")


def deployed_image_problems(
    images: Iterable[DeployedImage],
    *,
    namespace: str,
    published: Iterable[PublishedImage],
    allowed: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of the deployed ``images`` (see the module docstring).

    Problems: a container without an image; an image under ``namespace`` that the release did not
    publish, at another tag, or with another digest (each names the image and lists what was
    published). Warnings: an image outside ``namespace`` that no glob of ``allowed`` matches
    (matched against the reference as written and its fully qualified form).
    """
    published = list(published)
    by_repository = {image.repository: image for image in published}
    listing = ", ".join(image.pinned for image in published) or "nothing"
    problems: list[str] = []
    warnings: list[str] = []
    for image in images:
        if not image.reference.strip():
            problems.append(f"{image.where}: the container has no image; set the image in the chart's values")
            continue
        reference = ImageReference.parse(image.reference)
        if not _under(reference.name, namespace):
            if not allowed_by(image.reference, allowed):
                warnings.append(
                    f"{image.where}: deploys {image.reference}, outside {namespace}; publish it under the "
                    "namespace or allow it with CHART_ALLOWED_IMAGES"
                )
            continue
        mine = by_repository.get(reference.name)
        if mine is None:
            why = "which this release did not publish"
        elif reference.digest and reference.digest != mine.digest:
            why = f"whose digest is not the one this release pushed ({mine.digest})"
        elif reference.tag and reference.tag != mine.tag:
            why = f"at tag {reference.tag}, not this release's {mine.tag}"
        elif not reference.tag and not reference.digest:
            why = f"without a tag (that is latest), not this release's {mine.tag}"
        else:
            continue
        problems.append(
            f"{image.where}: deploys {image.reference}, {why}; this release published {listing}. "
            "Take the image from the values the release pins, or publish it with this release"
        )
    return list(dict.fromkeys(problems)), list(dict.fromkeys(warnings))
