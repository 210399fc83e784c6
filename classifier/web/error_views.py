"""The site's 400, 403, 404 and 500 responses: JSON under /api/, styled pages everywhere else.

Django calls these (galaxysite/urls.py's handler400 ... handler500) only when DEBUG is off.
Under /api/ the body is the documented ErrorOutput shape, {"detail": ...}, so a client or a
schema checker never meets an HTML page there, whichever layer refused the request.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.views.decorators.csrf import requires_csrf_token

from classifier.ops.responses import is_api_request

logger = logging.getLogger(__name__)


def _page(request: HttpRequest, template: str, status: int) -> HttpResponse:
    try:
        body = loader.render_to_string(template, {"status": status}, request=request)
    except Exception:  # an error page must never turn into a 500 itself
        logger.exception("the %s page could not be rendered", status)
        return HttpResponse(str(status), status=status, content_type="text/plain; charset=utf-8")
    return HttpResponse(body, status=status)


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"detail": "bad request"}, status=400)
    return _page(request, "400.html", 400)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"detail": "you do not have permission to do this"}, status=403)
    return _page(request, "403.html", 403)


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"detail": "not found"}, status=404)
    return _page(request, "404.html", 404)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"detail": "internal server error"}, status=500)
    # The page that failed may have failed in the user or session lookup, so this one
    # reads neither: 500.html does not extend base.html.
    try:
        return HttpResponse(loader.render_to_string("500.html", {"status": 500}), status=500)
    except Exception:
        logger.exception("the 500 page could not be rendered")
        return HttpResponse(_("Server error"), status=500, content_type="text/plain; charset=utf-8")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the styled 403 page instead of Django's debug-style one."""
    logger.warning("CSRF check failed for %s %s: %s", request.method, request.path, reason)
    if is_api_request(request):
        return JsonResponse({"detail": f"CSRF check failed: {reason}"}, status=403)
    return _page(request, "403_csrf.html", 403)
