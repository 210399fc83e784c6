"""CSV export of the audit log, shared by the API, the history page and the admin."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from django.http import HttpResponse

from classifier.galaxy10 import CLASS_NAMES
from classifier.models import Prediction

CSV_COLUMNS = (
    "id",
    "created_at",
    "original_filename",
    "sha256",
    "width",
    "height",
    "prediction",
    "class_index",
    "confidence",
    *CLASS_NAMES,
    "model_version",
    "inference_ms",
    "source",
)

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """Keep user-supplied text from being run as a formula when the CSV is opened."""
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def prediction_csv_row(prediction: Prediction) -> list[object]:
    return [
        prediction.pk,
        prediction.created_at.isoformat(),
        spreadsheet_safe(prediction.original_filename),
        prediction.sha256,
        prediction.width,
        prediction.height,
        prediction.class_name,
        prediction.class_index,
        f"{prediction.confidence:.6f}",
        *(f"{p:.6f}" for p in prediction.probabilities),
        prediction.model_version,
        f"{prediction.inference_ms:.3f}",
        prediction.source,
    ]


def write_predictions_csv(queryset: Iterable[Prediction], stream: TextIO) -> int:
    """Write a header and one row per prediction; returns the number of rows."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    rows = queryset.iterator(chunk_size=500) if hasattr(queryset, "iterator") else queryset
    count = 0
    for prediction in rows:
        writer.writerow(prediction_csv_row(prediction))
        count += 1
    return count


def predictions_csv_response(queryset: Iterable[Prediction], filename: str) -> tuple[HttpResponse, int]:
    """A CSV download of the predictions, written straight into the response; and the row count."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response, write_predictions_csv(queryset, response)
