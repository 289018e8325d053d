"""PostgreSQL advisory locks: one worker per row, one build per engine, one audit start at a time,
one signer per repository.

Session-level locks, so a worker that dies releases them with its connection. SQLite (the
single-worker quick start) has no other worker to exclude: every lock is acquired at once there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

# Namespaces (the first key of the two-key advisory lock), one per kind of thing locked.
IMAGE_LOCK = 7301
CHART_LOCK = 7302
ENGINE_LOCK = 7303
AUDIT_LOCK = 7310
SWEEP_LOCK = 7311
SIGNING_LOCK = 7320


@contextmanager
def exclusive(namespace: int, key: int) -> Iterator[bool]:
    """Try to hold lock ``(namespace, key)`` for the block; yields whether it was acquired."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])


def engine_key(docker_host: str) -> int:
    """The second key of an engine's lock: a stable signed 32-bit hash of its ``DOCKER_HOST``.

    Stable across processes and Python versions (``hash()`` is salted per process), so every
    worker pointed at the same engine contends for the same lock, and workers with engines of
    their own never wait for each other. A collision would only serialise two engines."""
    return int.from_bytes(hashlib.blake2b(docker_host.encode(), digest_size=4).digest(), "big", signed=True)


@contextmanager
def engine_lock(docker_host: str | None = None, *, shared: bool = False) -> Iterator[None]:
    """Serialise builds on one engine (``docker_host``, default this worker's ``DOCKER_HOST``): its
    classic image store keeps one image per tag, so two platforms pulling the same base at once
    could swap each other's base image. Waits its turn. Builds on other engines run meanwhile.

    ``shared``: BuildKit builds resolve every base by digest for their own platform, so they share
    the engine (several at once) and only wait for an exclusive holder (maintenance, a test)."""
    if connection.vendor != "postgresql":
        yield
        return
    key = engine_key(docker_host or settings.DOCKER_HOST)
    lock, unlock = (
        ("pg_advisory_lock_shared", "pg_advisory_unlock_shared")
        if shared
        else ("pg_advisory_lock", "pg_advisory_unlock")
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {lock}(%s, %s)", [ENGINE_LOCK, key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {unlock}(%s, %s)", [ENGINE_LOCK, key])


@contextmanager
def signing_lock(repository: str) -> Iterator[None]:
    """Serialise appends to the ``.sig``/``.att`` manifests of one repository: each append reads the
    manifest, adds a layer and writes it back, so two signers at once could drop each other's layer
    (an image's and a re-delivered task's, or two images sharing a platform manifest). Waits its turn."""
    if connection.vendor != "postgresql":
        yield
        return
    key = engine_key(repository)  # the same stable 32-bit hash, of the repository
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [SIGNING_LOCK, key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [SIGNING_LOCK, key])
