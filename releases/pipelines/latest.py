"""Moving each image's OCI ``latest`` tag back (or forward) after a withdrawal or a restore.

``latest`` must point at the newest version that is published (available, not a pre-release) and
not withdrawn. Publishing moves it forward (``images.move_latest``); a withdrawal or a restore
calls ``align_release`` from the ``align_latest_tags`` task, enqueued on commit. Both take
``latest_lock`` of the repository, so the newer answer is the one written last.

Every version tag stays: only ``latest`` is written, through the same ``put_manifest`` that
``move_latest`` uses, with a manifest the registry already holds (read by the target's digest).
Every other tag is still written only by ``put_manifest_immutable``.

When every published version of a repository is withdrawn, ``latest`` is left where it was and
the repository's ``LatestTag`` is ``stranded`` (``STRANDED_REASON``): a registry cannot remove a tag
without deleting the manifest, which the version tag shares (and exact pins must keep working);
pointing it at anything else would make ``docker pull`` succeed with an image we never published.
"""

from __future__ import annotations

from dataclasses import dataclass

from releases.adapters.registry_client import registry_client, split_location
from releases.database.locks import latest_lock

from ..choices import MOVING_TAG, LatestTagState
from ..models import DockerImage, LatestTag, ReleaseVersion
from ..oci import RegistryError, RegistryUnavailable

STRANDED_REASON = (
    "every published version of {name} is withdrawn; latest is left at {where} because a registry cannot "
    "remove a tag without deleting the manifest its version tag shares; admission refuses it, "
    "releases/latest/ answers 404, and restoring a version or publishing a new one moves latest again"
)


@dataclass(frozen=True)
class LatestOutcome:
    """What happened to one repository's ``latest``."""

    repository: str
    state: str
    version: str = ""
    reason: str = ""


def withdrawn_versions():
    return ReleaseVersion.objects.withdrawn().values("version")


def latest_candidates(registry: str, name: str):
    """The versions ``latest`` may point at in one repository, newest first: published image tags,
    not pre-releases, of releases that are not withdrawn."""
    images = DockerImage.objects.immutable_tags().filter(registry=registry, name=name)
    return images.exclude(tag__contains="-").exclude(tag__in=withdrawn_versions()).order_by("-tag_order")


def align_latest(registry: str, name: str, *, attempt: int = 0) -> LatestOutcome:
    """Point ``registry/name:latest`` at its newest published, not withdrawn, version.

    Raises ``RegistryUnavailable`` (the caller retries it); any other registry error ends the
    repository's ``LatestTag`` ``failed`` naming it.
    """
    repository = DockerImage.path_in_registry(registry, name)
    with latest_lock(repository):
        target = latest_candidates(registry, name).only("tag", "digest").first()
        try:
            with registry_client(split_location(registry)[0]) as client:
                live = client.head_manifest(repository, MOVING_TAG)
                if target is None:
                    where = live.digest if live is not None else "no digest (it does not exist)"
                    reason = STRANDED_REASON.format(name=name, where=where)
                    LatestTag.record(registry, name, LatestTagState.STRANDED, reason=reason, attempts=attempt + 1)
                    return LatestOutcome(repository, LatestTagState.STRANDED, reason=reason)
                if live is None or live.digest != target.digest:
                    body, media_type, _ = client.get_manifest(repository, target.digest)
                    client.put_manifest(repository, MOVING_TAG, body, media_type)
        except RegistryUnavailable:
            raise
        except RegistryError as error:
            reason = f"moving {name}:latest to {target.tag if target else '-'} failed: {error}"
            LatestTag.record(registry, name, LatestTagState.FAILED, reason=reason, attempts=attempt + 1)
            return LatestOutcome(repository, LatestTagState.FAILED, reason=reason)
    LatestTag.record(
        registry,
        name,
        LatestTagState.CURRENT,
        version=target.tag,
        digest=target.digest,
        reason=f"latest points at {target.tag}",
        attempts=attempt + 1,
    )
    return LatestOutcome(repository, LatestTagState.CURRENT, version=target.tag)


def repositories_of(release_pk: int) -> list[tuple[str, str]]:
    """The ``(registry, name)`` of each image of the release."""
    release = ReleaseVersion.objects.only("version", "layout").get(pk=release_pk)
    return sorted(set(release.images().values_list("registry", "name")))


def mark_moving(release_pk: int, reason: str, *, attempt: int = 0) -> None:
    for registry, name in repositories_of(release_pk):
        LatestTag.record(registry, name, LatestTagState.MOVING, reason=reason, attempts=attempt)


def mark_failed(release_pk: int, reason: str, *, attempt: int) -> None:
    for registry, name in repositories_of(release_pk):
        LatestTag.record(registry, name, LatestTagState.FAILED, reason=reason, attempts=attempt)


def align_release(release_pk: int, *, attempt: int = 0) -> list[LatestOutcome]:
    """Align ``latest`` of every image repository of the release (after its withdrawal or restore)."""
    return [align_latest(registry, name, attempt=attempt) for registry, name in repositories_of(release_pk)]
