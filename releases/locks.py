"""PostgreSQL advisory locks: one worker per row, one build per engine, one audit at a time.

Session-level locks, so a worker that dies releases them with its connection. SQLite (the
single-worker quick start) has no other worker to exclude: every lock is acquired at once there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# Namespaces (the first key of the two-key advisory lock), one per kind of thing locked.
IMAGE_LOCK = 7301
CHART_LOCK = 7302
ENGINE_LOCK = 7303
AUDIT_LOCK = 7310
SWEEP_LOCK = 7311


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


@contextmanager
def engine_lock() -> Iterator[None]:
    """Serialise builds on the one engine: its classic image store keeps one image per tag, so two
    platforms pulling the same base at once could swap each other's base image. Waits its turn."""
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
