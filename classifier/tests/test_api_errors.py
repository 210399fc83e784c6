"""The API's one exception handler: every refusal of the family answers with its own status,
its documented body, and always as JSON."""

from __future__ import annotations

import pytest
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from classifier.api.errors import exception_handler
from classifier.api.renderers import PredictionCsvRenderer
from classifier.core.exceptions import (
    ClassifierError,
    CutoutUnavailableError,
    FileRefusal,
    ImageValidationError,
    JobInputError,
    JobQueueUnavailableError,
    ModelUnavailableError,
    NoImagingError,
    PositionError,
    StorageUnavailableError,
)
from classifier.models import Job

REFUSALS = [
    (ImageValidationError([FileRefusal("a.png", "the file is empty")]), 400, "upload_refused"),
    (ImageValidationError([FileRefusal("a.png", "big")], too_large=True), 413, "upload_too_large"),
    (ModelUnavailableError("no model file"), 503, "model_unavailable"),
    (StorageUnavailableError(), 503, "storage_unavailable"),
    (PositionError("ra must be in [0, 360) degrees"), 400, "position_refused"),
    (NoImagingError("blank cutout"), 422, "no_imaging"),
    (CutoutUnavailableError("HTTP 500"), 502, "cutout_unavailable"),
    (CutoutUnavailableError("too slow", timed_out=True), 504, "cutout_timeout"),
    (JobInputError("not a zip"), 400, "job_refused"),
    (JobInputError("too big", too_large=True), 413, "job_too_large"),
    (JobQueueUnavailableError("the broker refused the job"), 503, "job_queue_unavailable"),
]


def handle(exc: Exception, *, renderer=None):
    request = APIRequestFactory().get("/api/predictions/")
    if renderer is not None:
        request.accepted_renderer, request.accepted_media_type = renderer, renderer.media_type
    return exception_handler(exc, {"request": request}), request


@pytest.mark.parametrize(("exc", "status", "code"), REFUSALS, ids=lambda value: getattr(value, "code", None))
def test_each_refusal_answers_with_its_status_and_body(exc, status, code):
    response, _request = handle(exc)
    assert isinstance(exc, ClassifierError)
    assert (exc.code, exc.status, response.status_code) == (code, status, status)
    assert response.data == exc.payload()
    assert set(response.data) <= {"detail", "reason", "errors"}


def test_file_refusals_list_each_file():
    response, _request = handle(ImageValidationError([FileRefusal("a.png", "the file is empty")]))
    assert response.data == {
        "detail": "the upload was refused, nothing was saved",
        "errors": [{"filename": "a.png", "error": "the file is empty"}],
    }


def test_a_broker_outage_says_when_to_try_again():
    response, _request = handle(JobQueueUnavailableError("down"))
    assert response["Retry-After"] == "30"
    assert response.data == {"detail": "the job queue is unavailable", "reason": "down"}


def test_an_unknown_job_is_a_404():
    response, _request = handle(Job.DoesNotExist())
    assert (response.status_code, response.data) == (404, {"detail": "No job with this id."})


def test_an_error_asked_for_as_csv_is_rendered_as_json():
    response, request = handle(ModelUnavailableError("gone"), renderer=PredictionCsvRenderer())
    assert response.status_code == 503
    assert isinstance(request.accepted_renderer, JSONRenderer)
