"""Content digests (``sha256:<hex>``)."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from releases.oci.names import validate_digest

CHUNK_SIZE = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    """The OCI digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(source: str | os.PathLike[str] | BinaryIO, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """``(digest, size)`` of a file path or a binary file object, read in bounded memory.

    A file object is read from its current position to the end and left there.
    """
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            return file_digest(handle, chunk_size)
    hasher = hashlib.sha256()
    size = 0
    while chunk := source.read(chunk_size):
        hasher.update(chunk)
        size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def verify_digest(data: bytes, expected: str) -> bool:
    """True when ``data`` hashes to ``expected`` (sha256 or sha512); refuses malformed digests."""
    validate_digest(expected)
    algorithm, _, hexdigest = expected.partition(":")
    return hashlib.new(algorithm, data).hexdigest() == hexdigest
