"""GET /api/predictions/: logged-in users read the audit log; anonymous callers may not."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.models import Prediction
from classifier.predictions.exports import CSV_COLUMNS
from classifier.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db

URL = reverse("api:prediction-list")


def ids(response):
    return [item["id"] for item in response.json()["results"]]


def test_anonymous_may_not_read_the_log(anonymous_client):
    PredictionFactory()
    assert anonymous_client.get(URL).status_code == 401
    assert anonymous_client.get(URL, {"format": "csv"}).status_code == 401


def test_user_reads_newest_first(user_client):
    now = timezone.now()
    older = PredictionFactory(created_at=now - timedelta(hours=1))
    newer = PredictionFactory(created_at=now)
    response = user_client.get(URL)
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert ids(response) == [newer.pk, older.pk]
    item = response.json()["results"][0]
    assert item["sha256"] == newer.sha256
    assert item["source"] == "web"


def test_pagination(settings, user_client):
    PredictionFactory.create_batch(30)
    first = user_client.get(URL).json()
    assert first["count"] == 30
    assert len(first["results"]) == 25
    second = user_client.get(first["next"]).json()
    assert len(second["results"]) == 5
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}


def test_filter_by_class(user_client):
    PredictionFactory.create_batch(12)
    target = Prediction.objects.first().class_index
    expected = sorted(Prediction.objects.filter(class_index=target).values_list("pk", flat=True))
    response = user_client.get(URL, {"class_index": target})
    assert sorted(ids(response)) == expected
    assert all(item["class_index"] == target for item in response.json()["results"])


def test_filter_by_source(user_client):
    web = PredictionFactory(source="web")
    cli = PredictionFactory(source="cli")
    assert ids(user_client.get(URL, {"source": "cli"})) == [cli.pk]
    assert ids(user_client.get(URL, {"source": "web"})) == [web.pk]


def test_filter_by_date_range_is_inclusive(user_client):
    today = timezone.now()
    old = PredictionFactory(created_at=today - timedelta(days=10))
    mid = PredictionFactory(created_at=today - timedelta(days=5))
    new = PredictionFactory(created_at=today)
    day = (today - timedelta(days=5)).date().isoformat()
    assert ids(user_client.get(URL, {"created_after": day})) == [new.pk, mid.pk]
    assert ids(user_client.get(URL, {"created_before": day})) == [mid.pk, old.pk]
    assert ids(user_client.get(URL, {"created_after": day, "created_before": day})) == [mid.pk]


def test_filter_by_filename_is_case_insensitive(user_client):
    hit = PredictionFactory(original_filename="NGC_4565_edge.jpg")
    PredictionFactory(original_filename="m87.png")
    assert ids(user_client.get(URL, {"filename": "ngc_4565"})) == [hit.pk]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"class_index": 42}, "Select a valid choice. 42 is not one of the available choices."),
        ({"source": "fax"}, "Select a valid choice. fax is not one of the available choices."),
        ({"created_after": "yesterday"}, "Enter a valid date."),
    ],
)
def test_invalid_filter_is_400_with_the_message_alone(user_client, params, message):
    # Each field's messages, as DRF reports a serializer's: no error codes mixed in.
    response = user_client.get(URL, params)
    assert response.status_code == 400
    assert response.json() == {next(iter(params)): [message]}


def test_each_invalid_filter_is_reported(user_client):
    response = user_client.get(URL, {"class_index": "x", "source": "fax"})
    assert response.status_code == 400
    assert set(response.json()) == {"class_index", "source"}
    assert all(isinstance(message, str) for messages in response.json().values() for message in messages)


def test_ordering_by_confidence(user_client):
    PredictionFactory.create_batch(6)
    ascending = [r["confidence"] for r in user_client.get(URL, {"ordering": "confidence"}).json()["results"]]
    descending = [
        r["confidence"] for r in user_client.get(URL, {"ordering": "-confidence"}).json()["results"]
    ]
    assert ascending == sorted(ascending)
    assert descending == sorted(ascending, reverse=True)


def test_ordering_by_date_ascending(user_client):
    now = timezone.now()
    first = PredictionFactory(created_at=now - timedelta(minutes=2))
    second = PredictionFactory(created_at=now)
    assert ids(user_client.get(URL, {"ordering": "created_at"})) == [first.pk, second.pk]


def test_csv_export_has_every_matching_row(user_client):
    PredictionFactory.create_batch(30, source="api")
    PredictionFactory(source="cli", original_filename="=HYPERLINK(evil).png")
    response = user_client.get(URL, {"format": "csv", "source": "api"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 30  # not paginated
    assert tuple(rows[0]) == CSV_COLUMNS
    record = Prediction.objects.get(pk=rows[0]["id"])
    assert rows[0]["prediction"] == record.class_name
    assert rows[0][CLASS_NAMES[record.class_index]] == f"{record.confidence:.4f}"  # 4 decimals
    assert {row["source"] for row in rows} == {"api"}


def test_csv_export_neutralises_formulas(user_client):
    PredictionFactory(original_filename="=HYPERLINK(evil).png")
    rows = list(csv.DictReader(io.StringIO(user_client.get(URL, {"format": "csv"}).content.decode())))
    assert rows[0]["original_filename"] == "'=HYPERLINK(evil).png"
