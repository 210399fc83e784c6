"""Every prediction carries its answer in Galaxy Zoo's terms (issue 18 item 4): stored by the one
service every caller goes through, and written last in every CSV, JSON and VOTable export, with
empty cells (or null) where a prediction has none."""

from __future__ import annotations

import csv
import io
import json
import warnings

import pytest
from astropy.io.votable import parse
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from classifier.core.galaxy10 import CLASS_NAMES, GROUP_OF_CLASS
from classifier.core.galaxy_zoo import GROUP_KEYS, MAIN_QUESTIONS, QUESTIONS
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Job, Prediction
from classifier.predictions.exports import (
    CSV_COLUMNS,
    GALAXY_ZOO_COLUMNS,
    GROUP_COLUMNS,
    QUESTION_COLUMNS,
    galaxy_zoo_cells,
)
from classifier.tests.factories import PredictionFactory
from classifier.tests.galaxy_zoo_support import GROUPS_ONLY, WITH_VOTES
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db


def _assert_groups_are_the_class_sums(galaxy_zoo: dict, probabilities: list[float]) -> None:
    # Stored as JSON (jsonb on PostgreSQL keeps keys in its own order): compared as a set.
    assert set(galaxy_zoo["groups"]) == set(GROUP_KEYS)
    for group, key in enumerate(GROUP_KEYS):
        expected = sum(p for p, g in zip(probabilities, GROUP_OF_CLASS, strict=True) if g == group)
        # Both rounded to four decimals: up to three classes' rounding apart.
        assert galaxy_zoo["groups"][key] == pytest.approx(expected, abs=3e-4)


def _assert_questions_answered(galaxy_zoo: dict) -> None:
    # The shipped model has the vote output: every main question, its answers summing to 1.
    assert set(galaxy_zoo["questions"]) == set(MAIN_QUESTIONS)
    for question, answers in galaxy_zoo["questions"].items():
        assert set(answers) == set(QUESTIONS[question])
        assert sum(answers.values()) == pytest.approx(1.0, abs=2e-3)


def _assert_question_cells_filled(row: dict) -> None:
    for question in MAIN_QUESTIONS:
        cells = [float(row[f"gz_{question}_{answer}"]) for answer in QUESTIONS[question]]
        assert sum(cells) == pytest.approx(1.0, abs=2e-3)


def test_the_column_names_are_documented_and_last():
    assert GROUP_COLUMNS == (
        "group_disturbed_or_merging",
        "group_smooth",
        "group_face_on_disk",
        "group_edge_on_disk",
    )
    assert QUESTION_COLUMNS[:3] == (
        "gz_smooth-or-featured_smooth",
        "gz_smooth-or-featured_featured-or-disk",
        "gz_smooth-or-featured_artifact",
    )
    assert len(QUESTION_COLUMNS) == sum(len(QUESTIONS[q]) for q in MAIN_QUESTIONS)
    assert CSV_COLUMNS[-len(GALAXY_ZOO_COLUMNS) :] == GALAXY_ZOO_COLUMNS
    assert CSV_COLUMNS[: -len(GALAXY_ZOO_COLUMNS)][-3:] == ("ra", "dec", "cutout_url")


def test_cells_are_four_decimals_and_empty_where_unknown():
    assert galaxy_zoo_cells(None) == [""] * len(GALAXY_ZOO_COLUMNS)
    assert galaxy_zoo_cells(GROUPS_ONLY) == [
        "0.0500",
        "0.1500",
        "0.7000",
        "0.1000",
        *[""] * len(QUESTION_COLUMNS),
    ]
    cells = dict(zip(GALAXY_ZOO_COLUMNS, galaxy_zoo_cells(WITH_VOTES), strict=True))
    assert cells["gz_smooth-or-featured_featured-or-disk"] == "0.7500"
    assert cells["gz_bar_strong"] == "0.6000"
    assert cells["gz_merging_merger"] == "0.0500"
    # A question the answer lacks (a model that predicts fewer) is empty, not an error.
    partial = {"groups": WITH_VOTES["groups"], "questions": {"bar": WITH_VOTES["questions"]["bar"]}}
    cells = dict(zip(GALAXY_ZOO_COLUMNS, galaxy_zoo_cells(partial), strict=True))
    assert (cells["gz_bar_weak"], cells["gz_how-rounded_round"]) == ("0.3000", "")


def test_every_new_prediction_stores_it_through_the_service(user_client):
    upload = SimpleUploadedFile("m31.png", make_image_bytes(), content_type="image/png")
    response = user_client.post(reverse("api:prediction-list"), {"image": [upload]}, format="multipart")
    assert response.status_code == 201, response.content
    [item] = response.json()["predictions"]
    stored = Prediction.objects.get(pk=item["id"])
    _assert_questions_answered(stored.galaxy_zoo)
    _assert_groups_are_the_class_sums(stored.galaxy_zoo, stored.probabilities)
    assert list(item)[-1] == "galaxy_zoo"
    assert item["galaxy_zoo"] == stored.galaxy_zoo
    assert list(item["galaxy_zoo"]["groups"]) == list(GROUP_KEYS)


def test_the_api_gives_groups_and_questions_in_the_models_order_whatever_the_stored_order(user_client):
    shuffled = {
        "questions": {q: dict(reversed(a.items())) for q, a in reversed(WITH_VOTES["questions"].items())},
        "groups": dict(reversed(WITH_VOTES["groups"].items())),
    }
    prediction = PredictionFactory(galaxy_zoo=shuffled)
    answer = user_client.get(reverse("api:prediction-detail", args=[prediction.pk])).json()["galaxy_zoo"]
    assert answer == WITH_VOTES
    assert list(answer) == ["groups", "questions"]
    assert list(answer["groups"]) == list(GROUP_KEYS)
    # As the core builds it (classifier.core.galaxy_zoo.galaxy_zoo_answer): MAIN_QUESTIONS order.
    assert list(answer["questions"]) == [q for q in MAIN_QUESTIONS if q in WITH_VOTES["questions"]]
    for question, answers in answer["questions"].items():
        assert list(answers) == [a for a in QUESTIONS[question] if a in answers]


def test_history_csv_appends_the_columns(client, user):
    PredictionFactory(original_filename="old.png")  # made before the field: null
    PredictionFactory(original_filename="voted.png", galaxy_zoo=WITH_VOTES)
    client.force_login(user)
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("classifier:history-csv")).content.decode())))
    by_name = {row["original_filename"]: row for row in rows}
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [by_name["old.png"][c] for c in GALAXY_ZOO_COLUMNS] == [""] * len(GALAXY_ZOO_COLUMNS)
    assert by_name["voted.png"]["group_face_on_disk"] == "0.7000"
    assert by_name["voted.png"]["gz_disk-edge-on_no"] == "0.9000"


def test_api_csv_appends_the_columns(user_client):
    PredictionFactory(galaxy_zoo=GROUPS_ONLY)
    response = user_client.get(reverse("api:prediction-list"), {"format": "csv"})
    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row[c] for c in GROUP_COLUMNS] == ["0.0500", "0.1500", "0.7000", "0.1000"]
    assert {row[c] for c in QUESTION_COLUMNS} == {""}


@pytest.fixture
def finished_job(user, django_capture_on_commit_callbacks) -> Job:
    images = distinct_images(2)
    catalogue = b"file,objid\ng0.png,J001\ng1.png,J002\n"
    entries = [("g0.png", images[0]), ("g1.png", images[1]), ("bad.txt", b"not an image")]
    submission = submission_from_uploads(
        archive=zip_upload(make_zip([*entries, ("catalogue.csv", catalogue)]))
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_create(
            name=submission.name, members=submission.members, catalogue=submission.catalogue, user=user
        )
        job = run_chunks_inline(job)
    # As a model with a vote output would have answered for one of them.
    Prediction.objects.filter(job=job, job_member__path="g1.png").update(galaxy_zoo=WITH_VOTES)
    return job


def _stream(response) -> bytes:
    return b"".join(response.streaming_content)


def test_job_results_csv_ends_with_the_columns(finished_job, user_client):
    response = user_client.get(reverse("api:job-results-csv", args=[finished_job.pk]))
    header, *rows = list(csv.reader(io.StringIO(_stream(response).decode())))
    assert header[-len(GALAXY_ZOO_COLUMNS) - 1 :] == ["objid", *GALAXY_ZOO_COLUMNS]
    by_path = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    g0 = by_path["g0.png"]
    stored = Prediction.objects.get(job=finished_job, job_member__path="g0.png")
    assert [g0[c] for c in GROUP_COLUMNS] == [f"{stored.galaxy_zoo['groups'][k]:.4f}" for k in GROUP_KEYS]
    _assert_question_cells_filled(g0)
    assert by_path["g1.png"]["gz_bar_strong"] == "0.6000"
    assert {by_path["bad.txt"][c] for c in GALAXY_ZOO_COLUMNS} == {""}


def test_job_results_json_ends_with_the_object(finished_job, user_client):
    response = user_client.get(reverse("api:job-results-json", args=[finished_job.pk]))
    records = {record["path"]: record for record in json.loads(_stream(response))}
    assert list(records["g0.png"])[-1] == "galaxy_zoo"
    _assert_questions_answered(records["g0.png"]["galaxy_zoo"])
    _assert_groups_are_the_class_sums(
        records["g0.png"]["galaxy_zoo"],
        Prediction.objects.get(pk=records["g0.png"]["prediction_id"]).probabilities,
    )
    assert records["g1.png"]["galaxy_zoo"] == WITH_VOTES
    assert records["bad.txt"]["galaxy_zoo"] is None


def test_job_results_votable_describes_the_columns(finished_job, user_client):
    response = user_client.get(reverse("api:job-results-votable", args=[finished_job.pk]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = parse(io.BytesIO(_stream(response))).get_first_table()
    fields = {field.name: field for field in table.fields}
    assert [field.name for field in table.fields][-len(GALAXY_ZOO_COLUMNS) :] == list(GALAXY_ZOO_COLUMNS)
    # The catalogue's column is still described as the catalogue's (an identifier).
    assert fields["objid"].ucd == "meta.id"
    for name in GALAXY_ZOO_COLUMNS:
        assert (fields[name].datatype, fields[name].ucd) == ("double", "stat.probability")
    described = {name: " ".join(str(fields[name].description).split()) for name in GALAXY_ZOO_COLUMNS}
    assert "Galaxy10 group face-on disk" in described["group_face_on_disk"]
    assert "volunteers answering strong to the question bar" in described["gz_bar_strong"]
    data = table.to_table(use_names_over_ids=True)
    rows = {str(path): index for index, path in enumerate(data["path"])}
    assert data["gz_bar_strong"][rows["g1.png"]] == pytest.approx(0.6)
    assert data["group_smooth"][rows["g0.png"]] >= 0
    assert 0 <= data["gz_bar_strong"][rows["g0.png"]] <= 1
    assert bool(data["gz_bar_strong"].mask[rows["bad.txt"]])  # null, not zero


def test_classify_command_csv_and_json(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(make_image_bytes())
    out = io.StringIO()
    call_command("classify", str(image), stdout=out, stderr=io.StringIO())
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(row)[-len(GALAXY_ZOO_COLUMNS) :] == list(GALAXY_ZOO_COLUMNS)
    groups = [float(row[c]) for c in GROUP_COLUMNS]
    assert sum(groups) == pytest.approx(1.0, abs=1e-3)
    _assert_question_cells_filled(row)

    out = io.StringIO()
    call_command("classify", str(image), "--format", "json", "--save", stdout=out, stderr=io.StringIO())
    [item] = json.loads(out.getvalue())
    assert list(item)[-1] == "galaxy_zoo"
    _assert_groups_are_the_class_sums(item["galaxy_zoo"], list(item["probabilities"].values()))
    assert Prediction.objects.get(pk=item["id"]).galaxy_zoo == item["galaxy_zoo"]
    assert [float(row[c]) for c in GROUP_COLUMNS] == [item["galaxy_zoo"]["groups"][k] for k in GROUP_KEYS]
    assert list(item["probabilities"]) == list(CLASS_NAMES)
