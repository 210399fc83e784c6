"""Responses shared by the pages and the request-wide middleware.

They live apart from the page views so that the middleware, which runs before any view,
does not depend on the page code.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def wants_json(request: HttpRequest) -> bool:
    """The upload page's script asks for JSON so it can place errors beside each preview."""
    return "application/json" in request.headers.get("Accept", "")


def service_unavailable(
    request: HttpRequest, *, reason: str, after_upload: bool = False, database_down: bool = False
) -> HttpResponse:
    """The 503 "unavailable" page (or its JSON for the upload script), with a retry hint."""
    if wants_json(request):
        return JsonResponse({"request_errors": [_("The classifier is unavailable: %s") % reason]}, status=503)
    context = {"reason": reason, "after_upload": after_upload, "database_down": database_down}
    response = render(request, "classifier/unavailable.html", context, status=503)
    response["Retry-After"] = "30"
    return response
