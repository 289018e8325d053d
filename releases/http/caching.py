"""Strong ETags and ``If-None-Match``, for the API and the Helm chart repository alike."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.http import HttpRequest


def etag_of(key: str | bytes) -> str:
    """A strong ETag (quoted) naming ``key``: a generation, a digest, a rendered body."""
    raw = key.encode() if isinstance(key, str) else key
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def etag_of_data(data: Any) -> str:
    """The ETag of JSON-able ``data``, independent of key order."""
    return etag_of(json.dumps(data, sort_keys=True, default=str))


def client_has(request: HttpRequest, etag: str) -> bool:
    """Whether the request's ``If-None-Match`` names ``etag`` (the client's copy is current)."""
    return etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]
