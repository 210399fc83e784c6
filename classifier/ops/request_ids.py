"""The request id and the log records' context: every log line of a request carries its id,
which the response echoes in X-Request-ID, and with LOG_REQUESTS one access event per request."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

request_logger = logging.getLogger("galaxysite.request")

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy may send: uuids, hex ids, and the like; anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str:
    return _request_id.get()


# A password-reset link carries its token in the path (accounts/reset/<uid>/<token>/).
_RESET_TOKEN = re.compile(r"^(/accounts/reset/[^/]+/)[^/]+")


def loggable_path(path: str) -> str:
    """The path with the secrets some paths carry replaced by ``***``."""
    return _RESET_TOKEN.sub(r"\1***", path)


class RequestIdFilter(logging.Filter):
    """Gives every log record the id of the request being served ("-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _request_id.get()
        if request_id == "-":
            # Django logs a 4xx or 5xx response ("django.request") after the whole middleware
            # chain has returned, with the request attached to the record.
            request_id = getattr(getattr(record, "request", None), "request_id", "-")
        record.request_id = request_id
        return True


def _incoming_request_id(request: HttpRequest) -> str:
    # Only a trusted proxy's id is kept: from anyone else it could forge or flood the logs.
    if settings.BEHIND_PROXY:
        candidate = request.headers.get(REQUEST_ID_HEADER, "")
        if _VALID_REQUEST_ID.match(candidate):
            return candidate
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Tags the request and each of its log lines with an id, echoed in X-Request-ID.

    With LOG_REQUESTS on it also writes one "request" event per request (method, path
    without the query string, status, duration): the access log with the request id,
    which replaces gunicorn's access line when LOG_FORMAT=json.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _incoming_request_id(request)
        request.request_id = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            if settings.LOG_REQUESTS:
                path = loggable_path(request.path)
                request_logger.info(
                    "%s %s %s",
                    request.method,
                    path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            return response
        finally:
            _request_id.reset(token)
