"""Exports: the audit log's CSV (the API, the history page and the admin), and the one writer that
every CSV the project produces goes through (job results, `manage.py classify` too). The VOTable
of job results is in predictions/votable.py."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TextIO

from django.http import HttpResponse

from classifier.core.galaxy10 import CLASS_NAMES, PROBABILITY_DECIMALS
from classifier.core.galaxy_zoo import GROUP_KEYS, MAIN_QUESTIONS, QUESTIONS
from classifier.models import Prediction


def probability_cell(value: float) -> str:
    """A probability as the CSV exports write it: always four decimals."""
    return f"{float(value):.{PROBABILITY_DECIMALS}f}"


# What a classification result says beyond its class, in every export: the out-of-distribution
# verdict and score, and whether a single-band FITS image was classified in grey.
CHECK_COLUMNS = ("in_distribution", "ood_score", "single_band")
# A result as `manage.py classify` and the job results write it.
# Where on the sky the image is, in degrees, and the survey cutout it was fetched from
# (docs/positions.md); empty for an upload without a celestial WCS.
POSITION_COLUMNS = ("ra", "dec", "cutout_url")

RESULT_COLUMNS = ("path", "prediction", "class_index", "confidence", *CLASS_NAMES, *CHECK_COLUMNS)


# The answer in Galaxy Zoo's terms (a prediction's galaxy_zoo), last in every export so that
# the columns before them keep their places: group_<group> is the summed probability of a
# Galaxy10 group's classes; gz_<question>_<answer> the predicted fraction of volunteers giving
# that answer (names as Galaxy Zoo DECaLS writes them: hyphens inside, so the first "_" after
# the question ends it). Empty when the prediction has none, or its model predicts no votes.
def group_column(key: str) -> str:
    return f"group_{key}"


def answer_column(question: str, answer: str) -> str:
    return f"gz_{question}_{answer}"


GROUP_COLUMNS = tuple(group_column(key) for key in GROUP_KEYS)
QUESTION_COLUMNS = tuple(
    answer_column(question, answer) for question in MAIN_QUESTIONS for answer in QUESTIONS[question]
)
GALAXY_ZOO_COLUMNS = (*GROUP_COLUMNS, *QUESTION_COLUMNS)

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
    *CHECK_COLUMNS,
    *POSITION_COLUMNS,
    *GALAXY_ZOO_COLUMNS,
)

# A formula character at the start of a cell, or at the start of what a spreadsheet
# splitting on another separator (";" or a tab for ",") would take as a cell: after
# that separator and any spaces or quotes. The quote is put right before it.
_FORMULA_START = re.compile(r"""(?:^|(?<=[,;|\t\r\n]))([ "']*)(?=[=+\-@\t\r])""")


# A cell that is a number and nothing else (a coordinate such as dec=-3.25, a score) is no
# formula whatever its sign, and stays a number for the spreadsheet.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def spreadsheet_safe(value: object) -> str:
    """Keep text from being run as a formula when the CSV is opened in a spreadsheet,
    whichever separator the spreadsheet splits on."""
    return _FORMULA_START.sub(r"\1'", str(value))


def spreadsheet_cell(value: object) -> object:
    """A cell as every export writes it: numbers as they are, any other text through
    spreadsheet_safe. Header cells too: a job's catalogue names its own columns."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    return text if _PLAIN_NUMBER.fullmatch(text) else spreadsheet_safe(text)


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


class SafeCsvWriter:
    """The CSV writer of every export: every cell, of the header as of the rows, goes through
    spreadsheet_cell, and every field is quoted, so a separator inside a value never starts a
    new cell for a spreadsheet that honours quotes (spreadsheet_safe covers those that split
    anyway). Lines end in CRLF, as RFC 4180 says, in every export alike."""

    def __init__(self, stream: _Writable) -> None:
        self._writer = csv.writer(stream, quoting=csv.QUOTE_ALL, lineterminator="\r\n")

    def writerow(self, cells: Iterable[object]) -> Any:
        """Write one row; returns what the stream's write returned (the line, for streaming)."""
        return self._writer.writerow([spreadsheet_cell(cell) for cell in cells])


def prediction_csv_row(prediction: Prediction) -> list[object]:
    return [
        prediction.pk,
        prediction.created_at.isoformat(),
        prediction.original_filename,
        prediction.sha256,
        prediction.width,
        prediction.height,
        prediction.class_name,
        prediction.class_index,
        probability_cell(prediction.confidence),
        *(probability_cell(p) for p in prediction.probabilities),
        prediction.model_version,
        f"{prediction.inference_ms:.3f}",
        prediction.source,
        *check_cells(prediction.in_distribution, prediction.ood_score, prediction.single_band),
        *position_cells(prediction),
        *galaxy_zoo_cells(prediction.galaxy_zoo),
    ]


def position_cells(prediction: Prediction) -> list[object]:
    """The POSITION_COLUMNS cells; empty where unknown."""
    return [
        "" if prediction.ra is None else f"{prediction.ra:.6f}",
        "" if prediction.dec is None else f"{prediction.dec:.6f}",
        prediction.cutout_url,
    ]


def galaxy_zoo_cells(galaxy_zoo: Mapping[str, Any] | None) -> list[str]:
    """The GALAXY_ZOO_COLUMNS cells of a prediction's galaxy_zoo; empty where it has no value."""
    groups = (galaxy_zoo or {}).get("groups") or {}
    questions = (galaxy_zoo or {}).get("questions") or {}
    cells = [_optional_probability(groups.get(key)) for key in GROUP_KEYS]
    for question in MAIN_QUESTIONS:
        answers = questions.get(question) or {}
        cells.extend(_optional_probability(answers.get(answer)) for answer in QUESTIONS[question])
    return cells


def _optional_probability(value: float | None) -> str:
    return "" if value is None else probability_cell(value)


def check_cells(in_distribution: bool | None, ood_score: float | None, single_band: bool | None) -> list[str]:
    """The CHECK_COLUMNS cells; empty where unknown."""
    return [
        optional_bool(in_distribution),
        "" if ood_score is None else f"{ood_score:.3f}",
        optional_bool(single_band),
    ]


def optional_bool(value: bool | None) -> str:
    """true/false, or empty when unknown (a model without an out-of-distribution gate)."""
    return "" if value is None else str(value).lower()


def write_predictions_csv(queryset: Iterable[Prediction], stream: TextIO) -> int:
    """Write a header and one row per prediction; returns the number of rows."""
    writer = SafeCsvWriter(stream)
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
