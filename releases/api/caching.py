"""Rendered list pages cached per "generation" of the data behind them.

The generation (``DataGeneration``) is bumped in the transaction of every release or artifact
change, so a cached page is never stale, whichever process wrote; reading it is one primary-key
lookup. Only JSON is served from the cache; the browsable API renders as usual.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotModified

from ..models import DataGeneration


def releases_generation() -> int:
    return DataGeneration.current(DataGeneration.RELEASES)


class CachedListMixin:
    """Serve ``list`` from a cache keyed by the data's generation and the full URL, with an ETag."""

    list_generation = staticmethod(releases_generation)

    def list(self, request, *args, **kwargs):
        if request.accepted_renderer.format != "json":
            return super().list(request, *args, **kwargs)
        raw_key = f"{self.basename}:{self.list_generation()}:{request.build_absolute_uri()}"
        etag = '"' + hashlib.sha256(raw_key.encode()).hexdigest()[:32] + '"'
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            response = HttpResponseNotModified()
            response["ETag"] = etag
            return response
        body = cache.get(etag)
        if body is None:
            response = super().list(request, *args, **kwargs)
            if response.status_code != 200:
                return response
            body = request.accepted_renderer.render(response.data, request.accepted_media_type, {"request": request})
            cache.set(etag, body, timeout=3600)
        response = HttpResponse(body, content_type="application/json")
        response["ETag"] = etag
        return response
