"""Error responses shared by the pages, the rate limits and the request-wide middleware.

A refusal answers in one of three forms, chosen here only: under /api/ the API's documented
ErrorOutput body ({"detail": ..., "reason": ...}); for a page's script that asks for JSON
the same shape with the page's translated messages and the list the script shows
({"detail", "errors", "request_errors"}); for a browser, a page or plain text. They live
in ops, not beside the page views, because the middleware runs before any view.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from classifier.core.exceptions import FileError

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def wants_json(request: HttpRequest) -> bool:
    """The upload page's script asks for JSON so it can place errors beside each preview."""
    return "application/json" in request.headers.get("Accept", "")


def page_error_json(
    status: int, *, request_errors: list[str], errors: list[FileError] | None = None
) -> JsonResponse:
    """A page's refusal for its script: ``errors`` per file, ``request_errors`` for the whole
    request, and ``detail`` summing them up as the API's body does."""
    errors = errors or []
    if request_errors:
        detail = request_errors[0]
    else:
        detail = _(
            "Some files could not be classified, so nothing was saved. Remove or replace them and try again."
        )
    return JsonResponse({"detail": detail, "errors": errors, "request_errors": request_errors}, status=status)


def refusal(
    request: HttpRequest,
    status: int,
    message: str,
    *,
    api_detail: str | None = None,
    api_reason: str | None = None,
    retry_after: int | None = None,
    page: Callable[[], HttpResponse] | None = None,
) -> HttpResponse:
    """A refused request in the form its client reads: the API's JSON under /api/
    (``api_detail`` and ``api_reason`` when the API words it otherwise), the page JSON for a
    page's script, else ``page()`` or ``message`` as plain text."""
    if is_api_request(request):
        body = {"detail": api_detail or message}
        if api_reason is not None:
            body["reason"] = api_reason
        response: HttpResponse = JsonResponse(body, status=status)
    elif wants_json(request):
        response = page_error_json(status, request_errors=[message])
    elif page is not None:
        response = page()
    else:
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def service_unavailable(
    request: HttpRequest, *, reason: str, after_upload: bool = False, database_down: bool = False
) -> HttpResponse:
    """The 503 "unavailable" page (or its JSON for the upload script), with a retry hint."""
    message = _("The classifier is unavailable: %s") % reason
    context = {"reason": reason, "after_upload": after_upload, "database_down": database_down}
    return refusal(
        request,
        503,
        message,
        retry_after=30,
        page=lambda: render(request, "classifier/unavailable.html", context, status=503),
    )
