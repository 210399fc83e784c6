"""CSV exports (API, history page, admin) cannot smuggle a formula into a spreadsheet
(issue 14, item 9), and a CSV request's errors come back as JSON.

- reader: a logged-in user who exports the audit log;
- staff: exports from the admin;
- anonymous: may not export, and is told so in JSON.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from classifier.models import Job, Prediction
from classifier.predictions.exports import (
    GALAXY_ZOO_COLUMNS,
    SafeCsvWriter,
    spreadsheet_cell,
    spreadsheet_safe,
    write_predictions_csv,
)
from classifier.tests.factories import PredictionFactory
from classifier.tests.jobs_support import make_zip, run_chunks_inline, zip_upload
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db

API_URL = reverse("api:prediction-list")
HISTORY_CSV_URL = reverse("classifier:history-csv")
ADMIN_CHANGELIST = reverse("admin:classifier_prediction_changelist")

FORMULA_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")
# Each splits into a formula cell for a spreadsheet that breaks lines on one of the
# separators below, whether or not it honours the quotes.
HOSTILE_NAMES = [
    "a;=1+1;b.png",
    "=1+1.png",
    "+1+1.png",
    "-1+1.png",
    "@SUM(A1).png",
    "x,=1+1,y.png",
    'a;"=1+1";b.png',
    "a; =1+1.png",
    "a;' =1+1.png",
    "a|=1+1.png",
    'quote"=HYPERLINK("http://evil.example").png',
]
SEPARATORS = (",", ";", "\t", "|")


def cells(body: str, delimiter: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(body), delimiter=delimiter) for cell in row]


def assert_no_formula_cell(body: str) -> None:
    for delimiter in SEPARATORS:
        starting = [cell for cell in cells(body, delimiter) if cell.startswith(FORMULA_CHARACTERS)]
        assert starting == [], f"split on {delimiter!r}"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_no_cell_starts_a_formula_whatever_the_separator(name):
    stream = io.StringIO()
    write_predictions_csv([PredictionFactory(original_filename=name)], stream)
    assert_no_formula_cell(stream.getvalue())


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("galaxy-1.png", "galaxy-1.png"),  # a hyphen inside a word starts no cell
        ("m51 +deep.png", "m51 +deep.png"),
        ("=1+1", "'=1+1"),
        ("a;=1+1;b.png", "a;'=1+1;b.png"),
        ('a;"=1";b', 'a;"\'=1";b'),
        ("2026-11-27T10:00:00+00:00", "2026-11-27T10:00:00+00:00"),
        ("0.250000", "0.250000"),
    ],
)
def test_only_a_cell_start_is_guarded(text, safe):
    assert spreadsheet_safe(text) == safe


def test_every_field_is_quoted():
    stream = io.StringIO()
    write_predictions_csv([PredictionFactory(original_filename="plain.png")], stream)
    for line in stream.getvalue().splitlines():
        assert line.startswith('"')
        assert line.endswith('"')
        assert '","' in line


def test_uploaded_hostile_name_is_exported_safely_by_the_api(user_client, client, user, admin_client):
    upload = SimpleUploadedFile("a;=1+1;b.png", make_image_bytes(), "image/png")
    response = user_client.post(API_URL, {"image": [upload]}, format="multipart")
    assert response.status_code == 201, response.content
    assert Prediction.objects.get().original_filename == "a;=1+1;b.png"

    client.force_login(user)
    admin_export = admin_client.post(
        ADMIN_CHANGELIST,
        {"action": "export_csv", "_selected_action": [Prediction.objects.get().pk]},
    )
    for response in (
        user_client.get(API_URL, {"format": "csv"}),
        client.get(HISTORY_CSV_URL),
        admin_export,
    ):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        body = response.content.decode()
        assert_no_formula_cell(body)
        [row] = list(csv.DictReader(io.StringIO(body)))
        # The name is still readable; only the cell-starting character is escaped.
        assert row["original_filename"] == "a;'=1+1;b.png"


def test_invalid_filter_with_csv_format_is_answered_in_json(user_client):
    PredictionFactory()
    response = user_client.get(API_URL + "?format=csv&source=x,=1%2B1,y")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.content.decode()
    assert "ErrorDetail" not in body
    assert "source" in response.json()
    assert "Content-Disposition" not in response


def test_anonymous_csv_request_is_refused_in_json(anonymous_client):
    response = anonymous_client.get(API_URL, {"format": "csv"})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


def test_csv_accept_header_errors_are_json_too(user_client):
    response = user_client.get(API_URL, {"source": "=1+1"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_post_never_answers_csv(user_client):
    upload = SimpleUploadedFile("=1+1.png", make_image_bytes(), "image/png")
    response = user_client.post(API_URL + "?format=csv", {"image": [upload]}, format="multipart")
    assert not response["Content-Type"].startswith("text/csv")
    assert response["Content-Type"] == "application/json"
    assert Prediction.objects.count() == 0


def test_history_csv_errors_are_json(client, user):
    client.force_login(user)
    response = client.get(HISTORY_CSV_URL, {"source": "x,=1+1,y"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "source" in response.json()


# --- Job results: the header row is escaped as the cells are (issue 21, item 7) --------------

# Catalogue column names as an attacker sends them; the tab and carriage return lead the name
# in the file (the catalogue reader strips them, leaving a formula start behind).
HOSTILE_COLUMNS = [
    '=HYPERLINK("http://evil.example","x")',
    "=cmd|' /C calc'!A0",
    "@SUM(1)",
    "+1",
    "-1",
    "\t=2+2",
    "\r@A1",
    "a;=1+1",
    "b|-2+3",
]


def assert_no_formula_cell_but_numbers(body: str) -> None:
    """As assert_no_formula_cell, but a cell that is a plain number (-1, -3.25) is a number,
    not a formula, and stays one in every export."""
    number = re.compile(r"[+-]?[0-9.]+")
    for delimiter in SEPARATORS:
        starting = [
            cell
            for cell in cells(body, delimiter)
            if cell.startswith(FORMULA_CHARACTERS) and not number.fullmatch(cell)
        ]
        assert starting == [], f"split on {delimiter!r}"


def test_job_results_header_is_escaped_exactly_like_its_cells(user, django_capture_on_commit_callbacks):
    catalogue = io.StringIO()
    writer = csv.writer(catalogue)
    writer.writerow(["file", *HOSTILE_COLUMNS])
    writer.writerow(["g0.png", *HOSTILE_COLUMNS])  # each value is its own column's name
    client = APIClient()
    client.force_authenticate(user)
    archive = make_zip([("g0.png", make_image_bytes()), ("catalogue.csv", catalogue.getvalue().encode())])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("api:job-list"), {"archive": zip_upload(archive)}, format="multipart")
        assert response.status_code == 202, response.content
        run_chunks_inline(Job.objects.get(pk=response.json()["id"]))

    results = client.get(reverse("api:job-results-csv", args=[response.json()["id"]]))
    body = b"".join(results.streaming_content).decode()
    header, row = list(csv.reader(io.StringIO(body)))
    # The catalogue's columns, before the Galaxy Zoo answers that end every export.
    header, row = header[: -len(GALAXY_ZOO_COLUMNS)], row[: -len(GALAXY_ZOO_COLUMNS)]
    count = len(HOSTILE_COLUMNS)
    assert header[-count:] == row[-count:]
    assert header[-count:] == [spreadsheet_cell(column.strip()) for column in HOSTILE_COLUMNS]
    assert header[-count:] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'=cmd|' /C calc'!A0",
        "'@SUM(1)",
        "+1",  # numbers stay numbers, in the header as in the cells
        "-1",
        "'=2+2",
        "'@A1",
        "a;'=1+1",
        "b|'-2+3",
    ]
    assert_no_formula_cell_but_numbers(body)


def test_every_export_writes_through_the_one_writer():
    """The header of the audit log's export goes through the same escaping as its cells."""
    stream = io.StringIO()
    SafeCsvWriter(stream).writerow(HOSTILE_COLUMNS)
    [written] = list(csv.reader(io.StringIO(stream.getvalue())))
    assert written == [spreadsheet_cell(column) for column in HOSTILE_COLUMNS]
    assert written[HOSTILE_COLUMNS.index("\t=2+2")] == "'\t'=2+2"
    assert written[HOSTILE_COLUMNS.index("\r@A1")] == "'\r'@A1"
    # Split on each separator (a bare carriage return cannot be split by csv.reader: left out).
    stream = io.StringIO()
    SafeCsvWriter(stream).writerow(column for column in HOSTILE_COLUMNS if "\r" not in column)
    assert_no_formula_cell_but_numbers(stream.getvalue())


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("-3.25", "-3.25"),
        ("+1", "+1"),
        ("1e5", "1e5"),
        ("-1+1", "'-1+1"),
        ("-1e5;=1", "'-1e5;'=1"),
        ("-inf", "'-inf"),
        (" -1", " '-1"),  # escaped: only a cell that is a number and nothing else is one
        ("=1", "'=1"),
        (-2, -2),
        (0.5, 0.5),
    ],
)
def test_only_plain_numbers_escape_the_guard(value, cell):
    assert spreadsheet_cell(value) == cell
