"""A limit on request bodies, for every entry point (API, webhook, admin).

DRF parses ``request.stream`` itself, so ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (which only guards
``request.body`` and forms) never applies to API bodies. This middleware refuses a declared
``Content-Length`` over ``REQUEST_BODY_MAX_BYTES`` before anything reads the body, and counts the
bytes actually read for bodies whose length is not declared (chunked ones), stopping at the limit.
Both answer 413 with the limit in the message.

Under ASGI, Django spools the whole body before any middleware runs; ``BodyLimitASGIHandler``
keeps at most one byte past the limit of it (the rest is drained, not stored), so the count above
still sees the excess. Under WSGI, Django reads no body whose length is not declared.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse


def _limit_label(limit: int) -> str:
    return f"{limit:,} bytes" + (f" ({limit // 1024} KiB)" if limit % 1024 == 0 else "")


class RequestBodyTooLarge(RequestDataTooBig):
    """A request body over ``REQUEST_BODY_MAX_BYTES``. A ``RequestDataTooBig``, so where this
    middleware does not answer it first, Django still refuses the request (400), never a 500."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        self.limit, self.size = limit, size
        told = f"the request body is {size:,} bytes" if size is not None else "the request body is too large"
        super().__init__(
            f"{told}; at most {_limit_label(limit)} (REQUEST_BODY_MAX_BYTES) are accepted; send a smaller body"
        )


class CountingStream:
    """Reads through to ``stream`` and raises ``RequestBodyTooLarge`` once more than ``limit`` bytes
    were read; never reads more than one byte past the limit."""

    def __init__(self, stream, limit: int) -> None:
        self._stream, self._limit, self.bytes_read, self.exceeded = stream, limit, 0, False

    def _bounded(self, size: int | None) -> int:
        allowed = self._limit + 1 - self.bytes_read
        return allowed if size is None or size < 0 else min(size, allowed)

    def _count(self, chunk: bytes) -> bytes:
        self.bytes_read += len(chunk)
        if self.bytes_read > self._limit:
            self.exceeded = True
            raise RequestBodyTooLarge(self._limit)
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        return self._count(self._stream.read(self._bounded(size)))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(self._stream.readline(self._bounded(size)))

    def close(self) -> None:
        self._stream.close()


def body_too_large(error: RequestBodyTooLarge) -> HttpResponse:
    return JsonResponse({"detail": str(error.args[0])}, status=413)


class RequestBodyLimitMiddleware:
    """Answer 413 to a request body over ``REQUEST_BODY_MAX_BYTES``, declared or read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.REQUEST_BODY_MAX_BYTES
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > limit:
            return body_too_large(RequestBodyTooLarge(limit, int(declared)))
        # Django keeps the body stream in ``_stream`` for both WSGI and ASGI requests; every reader
        # (request.body, request.POST, DRF's parsers) goes through it.
        stream = request._stream = CountingStream(request._stream, limit)
        response = self.get_response(request)
        if stream.exceeded and response.status_code != 413:
            # Read outside a view (by another middleware): Django answered 400 already.
            return body_too_large(RequestBodyTooLarge(limit))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestBodyTooLarge):
            return body_too_large(exception)
        return None


class BodyLimitASGIHandler(ASGIHandler):
    """Django's ASGI handler, keeping at most ``REQUEST_BODY_MAX_BYTES`` + 1 bytes of a body."""

    async def read_body(self, receive):
        keep = settings.REQUEST_BODY_MAX_BYTES + 1
        stored = 0

        async def bounded_receive():
            nonlocal stored
            message = await receive()
            if message.get("body"):
                chunk = message["body"][: max(0, keep - stored)]
                stored += len(chunk)
                message = {**message, "body": chunk}
            return message

        return await super().read_body(bounded_receive)
