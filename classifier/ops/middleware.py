"""Request-wide guards: a cap on the body size, and a clear 503 page when the database is down."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from rest_framework.exceptions import APIException

from classifier.ops import metrics
from classifier.ops.api_tokens import api_token_user
from classifier.ops.responses import is_api_request, refusal, service_unavailable

logger = logging.getLogger(__name__)


JOB_SUBMIT_PATHS = ("/api/jobs/", "/jobs/new/")
PREDICTION_UPLOAD_PATHS = ("/", "/api/predictions/")


def _logged_in(request: HttpRequest) -> bool:
    """Whether the request comes from a logged-in user, by session or by API token, read from
    the headers only. DRF's SessionAuthentication is not asked: its CSRF check reads the form."""
    try:
        if request.user.is_authenticated:
            return True
        if not is_api_request(request):
            return False
        user = api_token_user(request)
        return user is not None and user.is_authenticated
    except (APIException, OperationalError, InterfaceError):
        # A bad token, or no database to check it in: judged as anonymous.
        return False


def body_limits(path: str) -> tuple[int, int]:
    """The largest request body that ``path`` takes from (anonymous visitors, logged-in users).

    Only the prediction uploads and the job submissions take files. Every other endpoint takes
    at most a form or a JSON document, which Django caps at DATA_UPLOAD_MAX_MEMORY_SIZE once
    read, so a larger body is refused before it is read.
    """
    form = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or settings.MAX_REQUEST_BYTES
    if path in PREDICTION_UPLOAD_PATHS:
        upload = settings.MAX_REQUEST_BYTES
        return (upload if settings.ALLOW_ANONYMOUS_PREDICT else form, upload)
    if path in JOB_SUBMIT_PATHS:
        # Only users submit jobs; a job's archive has its own, larger limit (the job services
        # check the archive itself).
        return (form, max(settings.MAX_REQUEST_BYTES, settings.JOB_MAX_ARCHIVE_BYTES + form))
    return (form, form)


class RequestSizeLimitMiddleware:
    """Refuses a request whose declared body is larger than its endpoint takes, with 413.

    Django caps only the non-file part of a multipart body (DATA_UPLOAD_MAX_MEMORY_SIZE)
    and spools files to disk whatever their size; the per-file limit is checked only
    afterwards, and CSRF's check alone reads (and spools) the whole form. This runs first,
    on the Content-Length header, so an oversized request is refused before a byte of it is
    parsed or written; the limit is the endpoint's, for the client's class (body_limits).
    Django reads at most Content-Length bytes, so a body longer than declared is cut there;
    a body without Content-Length (chunked) would be read as empty, so it is refused with 411
    before any of it is read.

    It sits after the session, locale, CSRF and auth middleware, none of which reads
    the body before the view (CSRF checks the form in process_view, which runs after
    every middleware's __call__), so the 413 page is in the reader's language and
    shows who is logged in.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "CONTENT_LENGTH" not in request.META and "HTTP_TRANSFER_ENCODING" in request.META:
            return self.length_required(request)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        anonymous_limit, user_limit = body_limits(request.path)
        if declared <= anonymous_limit:
            return self.get_response(request)
        # Only a body larger than an anonymous visitor may send needs to know who sends it.
        limit = user_limit if _logged_in(request) else anonymous_limit
        if declared > limit:
            metrics.record_request_too_large()
            return self.refuse(request, declared=declared, limit=limit)
        return self.get_response(request)

    @staticmethod
    def length_required(request: HttpRequest) -> HttpResponse:
        message = _("Send the request body with a Content-Length header; nothing was read or saved.")
        return refusal(request, 411, message)

    @staticmethod
    def refuse(request: HttpRequest, *, declared: int, limit: int) -> HttpResponse:
        message = _("The upload is too large (more than %(limit)s in all), so nothing was saved.") % {
            "limit": filesizeformat(limit)
        }
        context = {
            "declared": declared,
            "limit": limit,
            "max_upload_bytes": settings.MAX_UPLOAD_BYTES,
            "max_files": settings.MAX_FILES_PER_REQUEST,
        }
        return refusal(
            request,
            413,
            message,
            api_detail="the request is too large, nothing was saved",
            api_reason=f"the request is {declared:,} bytes, more than the limit of {limit:,} bytes",
            page=lambda: render(request, "413.html", context, status=413),
        )


class DatabaseUnavailableMiddleware:
    """A page view that cannot reach the database answers the "unavailable" page with 503.

    The REST API turns database errors into JSON 503s in its own exception handler;
    this does the same for every page, in one place, instead of a 500 with a traceback.
    Only connection-level failures count: an IntegrityError or ProgrammingError is a
    bug and stays a 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_api_request(request) or not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        # The user could not be loaded; rendering the page must not try again.
        request.user = AnonymousUser()
        return service_unavailable(
            request,
            reason=_("the database is unavailable"),
            after_upload=request.method == "POST",
            database_down=True,
        )
