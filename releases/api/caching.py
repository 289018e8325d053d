"""HTTP caching of the API: ETags on every read, and list pages cached per "generation" of the
data behind them.

The generation (``DataGeneration``) is bumped in the transaction of every release or artifact
change, so a cached page is never stale, whichever process wrote; reading it is one primary-key
lookup. Only JSON is served from the cache; the browsable API renders as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotModified
from rest_framework import status
from rest_framework.response import Response

from releases.http.caching import client_has, etag_of, etag_of_data

from ..models import DataGeneration


def with_etag(request, data) -> Response:
    """Answer ``data`` with a strong ETag of its JSON, or 304 when the client already has it."""
    etag = etag_of_data(data)
    response = Response(status=status.HTTP_304_NOT_MODIFIED) if client_has(request, etag) else Response(data)
    response["ETag"] = etag
    return response


def releases_generation() -> int:
    return DataGeneration.current(DataGeneration.RELEASES)


def cached_json(
    request, namespace: str, answer: Callable[[], Response], generation: Callable[[], int] = releases_generation
):
    """``answer()`` rendered as JSON, cached under the data's ``generation()`` and the full URL,
    with an ETag; 304 when the client has it. Only a 200 is cached; an error raised or answered by
    ``answer()`` passes through. Other renderers (the browsable API) are not cached."""
    if request.accepted_renderer.format != "json":
        return answer()
    etag = etag_of(f"{namespace}:{generation()}:{request.build_absolute_uri()}")
    if client_has(request, etag):
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return response
    body = cache.get(etag)
    if body is None:
        response = answer()
        if response.status_code != 200:
            return response
        body = request.accepted_renderer.render(response.data, request.accepted_media_type, {"request": request})
        cache.set(etag, body, timeout=3600)
    response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response


class CachedListMixin:
    """Serve ``list`` from a cache keyed by the data's generation and the full URL, with an ETag."""

    list_generation = staticmethod(releases_generation)

    def list(self, request, *args, **kwargs):
        return cached_json(
            request,
            self.basename,
            lambda: super(CachedListMixin, self).list(request, *args, **kwargs),
            generation=self.list_generation,
        )
