"""A cap on the whole request body, checked before any of it is read."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    """Refuses a request whose declared body is larger than MAX_REQUEST_BYTES with 413.

    Django caps only the non-file part of a multipart body (DATA_UPLOAD_MAX_MEMORY_SIZE)
    and spools files to disk whatever their size; the per-file limit is checked only
    afterwards. This runs first, on the Content-Length header, so an oversized request
    is refused before a byte of it is parsed or written. A body sent without
    Content-Length (chunked) is read by Django as empty, so it cannot bypass the cap.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            message = f"the request is {declared:,} bytes, more than the limit of {limit:,} bytes"
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "the request is too large, nothing was saved", "reason": message}, status=413
                )
            return HttpResponse(
                f"Request too large: {message}. Nothing was saved.\n",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
