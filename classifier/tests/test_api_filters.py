"""The audit log's filters on /api/predictions/ and /history/: confidence (min/max), the
in-distribution flag and the job; an unknown parameter is a 400 naming the allowed ones, never
a silently unfiltered list. Probabilities are given to 4 decimals, and every CSV export quotes
every field the same way."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.predictions.filters import PredictionFilter
from classifier.tests.factories import PredictionFactory
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload

pytestmark = pytest.mark.django_db

URL = reverse("api:prediction-list")
# One of the int8 model's steps, as the database holds it.
INT8_STEP = 0.8622047244094488


def _probabilities(confidence: float, top: int = 5) -> list[float]:
    rest = (1 - confidence) / (len(CLASS_NAMES) - 1)
    return [confidence if index == top else rest for index in range(len(CLASS_NAMES))]


def _prediction(confidence: float, **kwargs):
    probabilities = _probabilities(confidence)
    return PredictionFactory(
        probabilities=probabilities, class_index=5, class_name=CLASS_NAMES[5], confidence=confidence, **kwargs
    )


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:300]
    return {item["id"] for item in response.json()["results"]}


@pytest.fixture
def rows():
    """Three confidences, three in-distribution verdicts (one unknown: a model without a gate)."""
    return {
        "low": _prediction(0.3, in_distribution=True),
        "mid": _prediction(0.6, in_distribution=None),
        "high": _prediction(0.95, in_distribution=False),
    }


def test_confidence_min_and_max(rows, user_client):
    assert _ids(user_client.get(URL, {"confidence_min": "0.9"})) == {rows["high"].pk}
    assert _ids(user_client.get(URL, {"confidence_max": "0.6"})) == {rows["low"].pk, rows["mid"].pk}
    both = user_client.get(URL, {"confidence_min": "0.5", "confidence_max": "0.7"})
    assert _ids(both) == {rows["mid"].pk}
    # The bounds are inclusive.
    assert _ids(user_client.get(URL, {"confidence_min": "0.95"})) == {rows["high"].pk}


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc", "NaN", "inf", "0.5.1"])
def test_confidence_out_of_range_or_not_a_number_is_400(rows, user_client, value):
    response = user_client.get(URL, {"confidence_min": value})
    assert response.status_code == 400
    assert list(response.json()) == ["confidence_min"]


def test_in_distribution(rows, user_client):
    assert _ids(user_client.get(URL, {"in_distribution": "true"})) == {rows["low"].pk}
    assert _ids(user_client.get(URL, {"in_distribution": "false"})) == {rows["high"].pk}
    response = user_client.get(URL, {"in_distribution": "maybe"})
    assert response.status_code == 400
    assert list(response.json()) == ["in_distribution"]


def test_job(user, other_user_client, user_client, django_capture_on_commit_callbacks):
    PredictionFactory()
    submission = submission_from_uploads(archive=zip_upload(make_zip([("a.png", distinct_images(1)[0])])))
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_create(
            name=submission.name, members=submission.members, catalogue=None, user=user
        )
    run_chunks_inline(job)
    mine = _ids(user_client.get(URL, {"job": str(job.pk)}))
    assert mine == set(job.predictions.values_list("pk", flat=True))
    assert len(mine) == 1
    # Another user's job reads as an empty one: no hint that it exists.
    assert _ids(other_user_client.get(URL, {"job": str(job.pk)})) == set()
    for bad in ("abc", "1.5", "0", str(2**63)):
        assert user_client.get(URL, {"job": bad}).status_code == 400, bad


@pytest.fixture
def other_user_client(django_user_model):
    """Another logged-in user: must not learn of the reader's jobs."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user(username="other", password="o-pass-123"))
    return client


@pytest.mark.parametrize("params", [{"confidence_minimum": "0.9"}, {"classindex": "5"}, {"q": "x"}])
def test_an_unknown_parameter_is_400_listing_the_allowed_ones(rows, user_client, params):
    response = user_client.get(URL, params)
    assert response.status_code == 400
    (name,) = params
    body = response.json()
    assert list(body) == [name]
    message = body[name][0]
    for allowed in PredictionFilter.allowed_parameters():
        assert allowed in message
    assert "confidence_min" in message
    # The CSV export refuses it as well (as JSON, never as a CSV).
    response = user_client.get(URL, {**params, "format": "csv"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_pagination_format_and_ordering_stay_allowed(rows, user_client):
    response = user_client.get(URL, {"page": "1", "ordering": "-confidence", "confidence_min": "0.5"})
    assert [item["id"] for item in response.json()["results"]] == [rows["high"].pk, rows["mid"].pk]
    response = user_client.get(URL, {"format": "csv", "confidence_min": "0.9"})
    assert response.status_code == 200
    records = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(record["id"]) for record in records] == [rows["high"].pk]
    assert user_client.get(URL, {"format": "json"}).status_code == 200


def test_probabilities_are_rounded_to_4_decimals_in_the_api_and_exports(user_client, client, user):
    prediction = PredictionFactory(
        probabilities=[INT8_STEP, *[(1 - INT8_STEP) / 9] * 9],
        class_index=0,
        class_name=CLASS_NAMES[0],
        confidence=INT8_STEP,
    )
    body = user_client.get(reverse("api:prediction-detail", args=[prediction.pk])).json()
    assert body["confidence"] == 0.8622
    assert body["probabilities"][CLASS_NAMES[0]] == 0.8622
    assert body["probabilities"][CLASS_NAMES[1]] == round((1 - INT8_STEP) / 9, 4)
    listed = user_client.get(URL).json()["results"][0]
    assert listed["confidence"] == 0.8622
    csv_text = user_client.get(URL, {"format": "csv"}).content.decode()
    client.force_login(user)
    history_csv = client.get(reverse("classifier:history-csv")).content.decode()
    for text in (csv_text, history_csv):
        assert '"0.8622"' in text
        assert "0.862204" not in text
    assert str(INT8_STEP) not in csv_text + history_csv + str(body)


def test_job_results_json_and_csv_have_4_decimals(user, user_client, django_capture_on_commit_callbacks):
    submission = submission_from_uploads(archive=zip_upload(make_zip([("a.png", distinct_images(1)[0])])))
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_create(
            name=submission.name, members=submission.members, catalogue=None, user=user
        )
    run_chunks_inline(job)
    response = user_client.get(reverse("api:job-results-json", args=[job.pk]))
    (record,) = json.loads(b"".join(response.streaming_content))
    for value in [record["confidence"], *record["probabilities"].values()]:
        assert value == round(value, 4)
    response = user_client.get(reverse("api:job-results-csv", args=[job.pk]))
    (row,) = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    for name in ("confidence", *CLASS_NAMES):
        assert re.fullmatch(r"[01]\.[0-9]{4}", row[name]), row[name]


def _quoted_alike(text: str) -> None:
    """Every field of every line quoted, as csv.QUOTE_ALL writes it."""
    lines = text.splitlines()
    assert len(lines) >= 2
    for line, cells in zip(lines, csv.reader(io.StringIO(text)), strict=True):
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow(cells)
        assert line == out.getvalue()


def test_every_csv_export_quotes_the_same_way(  # noqa: PLR0917 (fixtures)
    user, staff, client, user_client, tmp_path, django_capture_on_commit_callbacks, image_bytes
):
    prediction = _prediction(0.7, original_filename='a "quoted", name.png', user=user)
    client.force_login(user)
    submission = submission_from_uploads(archive=zip_upload(make_zip([("b, c.png", distinct_images(1)[0])])))
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_create(
            name=submission.name, members=submission.members, catalogue=None, user=user
        )
    run_chunks_inline(job)
    exports = {
        "api": user_client.get(URL, {"format": "csv"}).content.decode(),
        "history": client.get(reverse("classifier:history-csv")).content.decode(),
        "results": client.get(
            reverse("classifier:results-csv"), {"ids": str(prediction.pk)}
        ).content.decode(),
        "job": b"".join(
            user_client.get(reverse("api:job-results-csv", args=[job.pk])).streaming_content
        ).decode(),
    }
    client.force_login(staff)
    admin = client.post(
        reverse("admin:classifier_prediction_changelist"),
        {"action": "export_csv", "_selected_action": [prediction.pk]},
    )
    assert admin.status_code == 200
    assert admin["Content-Type"].startswith("text/csv")
    exports["admin"] = admin.content.decode()
    image = tmp_path / "d, e.png"
    image.write_bytes(image_bytes())
    out = tmp_path / "classify.csv"
    call_command("classify", str(image), "--format", "csv", "--output", str(out), verbosity=0)
    exports["classify"] = out.read_text()
    for name, text in exports.items():
        try:
            _quoted_alike(text)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


# The history page: the same filters, in its form; an unknown parameter is a 400 page that says
# which parameters it takes.


def test_history_page_filters_by_confidence_flag_and_job(rows, client, user):
    client.force_login(user)
    html = client.get(reverse("classifier:history"), {"confidence_min": "0.9"}).content.decode()
    assert f'data-prediction-id="{rows["high"].pk}"' in html
    assert f'data-prediction-id="{rows["low"].pk}"' not in html
    html = client.get(reverse("classifier:history"), {"in_distribution": "true"}).content.decode()
    assert re.findall(r'data-prediction-id="(\d+)"', html) == [str(rows["low"].pk)]
    for name in ("confidence_min", "confidence_max", "in_distribution", "job"):
        assert f'name="{name}"' in html
    assert client.get(reverse("classifier:history"), {"job": "999"}).status_code == 200


@pytest.mark.parametrize("language", ["en", "es"])
def test_history_page_unknown_parameter_is_a_400_that_says_so(rows, client, user, language):
    client.force_login(user)
    response = client.get(
        reverse("classifier:history"), {"confidence_minimum": "0.9"}, HTTP_ACCEPT_LANGUAGE=language
    )
    translation.deactivate()
    assert response.status_code == 400
    html = response.content.decode()
    alert = re.search(r'id="history-unknown">([^<]*)<', html).group(1)
    assert "confidence_minimum" in alert
    assert "confidence_min," in alert
    assert ("This page takes" if language == "en" else "Esta página admite") in alert
    assert "data-prediction-id" not in html  # no unfiltered rows
    # Its CSV link is refused as well.
    assert client.get(reverse("classifier:history-csv"), {"confidence_minimum": "0.9"}).status_code == 400
