"""The one exception handler of the REST API (REST_FRAMEWORK["EXCEPTION_HANDLER"]).

Every refusal the services raise is a classifier.core.exceptions.ClassifierError, which
carries its HTTP status and its body; Django's own errors become DRF's. Error bodies are
the documented ErrorOutput shape, {"detail": ..., "reason" or "errors": ...}, and always JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation, ValidationError
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from classifier.core.exceptions import ClassifierError
from classifier.models import Job, Prediction

logger = logging.getLogger(__name__)


def error_response(exc: ClassifierError) -> Response:
    """A refusal of the family as its documented JSON body, with Retry-After when it has one."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return Response(exc.payload(), exc.status, headers=headers)


def _domain_response(exc: Exception) -> Response | None:
    if isinstance(exc, ClassifierError):
        return error_response(exc)
    if isinstance(exc, DatabaseError):
        logger.error("database error in the API", exc_info=exc)
        return Response(
            {"detail": "the database is unavailable", "reason": type(exc).__name__},
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, Job.DoesNotExist):
        return Response({"detail": "No job with this id."}, status.HTTP_404_NOT_FOUND)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "the request is too large"}, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": f"the request was refused: {exc}"}, status.HTTP_400_BAD_REQUEST)
    return None


def _as_drf(exc: Exception) -> Exception:
    if isinstance(exc, ValidationError):
        return drf_exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, Prediction.DoesNotExist):
        return Http404()
    if isinstance(exc, PermissionDenied):
        return drf_exceptions.PermissionDenied(str(exc) or None)
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus the domain errors as clear JSON (never a traceback)."""
    response = _domain_response(exc) or drf_exception_handler(_as_drf(exc), context)
    request = context.get("request")
    if response is not None and request is not None:
        # One rendered as the CSV or VOTable a client asked for would put internal text,
        # unguarded, into a spreadsheet (and read as data).
        renderer = getattr(request, "accepted_renderer", None)
        if renderer is not None and not isinstance(renderer, JSONRenderer | BrowsableAPIRenderer):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    return response
