"""What the image and chart pipelines share: one worker per row, the registry client, the source."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection, models

from .imagebuild import checkout
from .models import ReleaseVersion
from .oci import RegistryClient

logger = logging.getLogger(__name__)

# Advisory-lock namespaces (first key of pg_try_advisory_lock), one per kind of row.
IMAGE_LOCK = 7301
CHART_LOCK = 7302
ENGINE_LOCK = 7303


class PipelineError(Exception):
    """A failure a person must act on; its message becomes the row's failure reason."""


class PipelineBusy(Exception):
    """Another worker holds this row's pipeline (e.g. a redelivered copy of a task still running).

    The task retries later instead of returning: if that other worker dies, the work still continues.
    """


@contextmanager
def exclusive(namespace: int, pk: int) -> Iterator[bool]:
    """One pipeline per row at a time: a PostgreSQL session advisory lock (released if the worker dies).

    Yields whether the lock was acquired; SQLite (the single-worker quick start) always acquires.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, pk])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, pk])


@contextmanager
def engine_lock() -> Iterator[None]:
    """Serialise builds on the one engine: its classic image store keeps one image per tag, so two
    platforms pulling the same base at once could swap each other's base image."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, 0)", [ENGINE_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [ENGINE_LOCK])


def registry_client(host: str | None = None) -> RegistryClient:
    """A client for ``host`` (default: the host of ``REGISTRY_NAMESPACE``) with the configured credentials."""
    return RegistryClient(
        host or settings.REGISTRY_NAMESPACE.split("/", 1)[0],
        username=settings.REGISTRY_USERNAME,
        password=settings.REGISTRY_PASSWORD,
        insecure_hosts=settings.REGISTRY_INSECURE_HOSTS,
    )


def report_progress(model: type[models.Model], pk: int, message: str) -> None:
    """Log what a pipeline is doing and show it in the row's ``progress`` (the admin's list)."""
    logger.info("%s %s: %s", model._meta.model_name, pk, message)
    model.objects.filter(pk=pk).update(progress=message[:255])


def repository_in_registry(location: str) -> str:
    """``ghcr.io/stianfro/threek8s/threek8s-backend`` -> ``stianfro/threek8s/threek8s-backend``."""
    return location.split("/", 1)[1]


def release_of(version: str) -> ReleaseVersion:
    release = ReleaseVersion.objects.filter(version=version).first()
    if release is None:
        raise PipelineError(f"no release {version} exists to say which commit to build; create it first")
    return release


def checkout_source(release: ReleaseVersion, dest: Path) -> Path:
    """A fresh checkout of the release's commit from ``SOURCE_REPOSITORY_URL`` at ``dest``."""
    if not settings.SOURCE_REPOSITORY_URL:
        raise PipelineError("SOURCE_REPOSITORY_URL is not set; point it at the git repository to build")
    shutil.rmtree(dest, ignore_errors=True)
    try:
        return checkout(settings.SOURCE_REPOSITORY_URL, release.commit_sha, dest)
    except Exception as error:  # SourceError and whatever git says: all need a person
        raise PipelineError(str(error)) from error
