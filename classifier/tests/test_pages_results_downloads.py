"""/results.csv and /results.json: the downloads of the batch results page, by its ownership rule
(anonymous uploaders get their own results, logged-in users any)."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from classifier.models import Prediction
from classifier.predictions.exports import CSV_COLUMNS
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db


def upload_two(client: Client) -> list[Prediction]:
    images = [
        SimpleUploadedFile("red.png", make_image_bytes(color=(200, 10, 10))),
        SimpleUploadedFile("blue.png", make_image_bytes(color=(10, 10, 200))),
    ]
    response = client.post(reverse("classifier:upload"), {"images": images})
    assert response.status_code == 302
    return list(Prediction.objects.order_by("pk"))


def ids_query(predictions: list[Prediction]) -> str:
    return "ids=" + ",".join(str(p.pk) for p in predictions)


def test_results_page_links_both_downloads(client):
    predictions = upload_two(client)
    page = client.get(f"{reverse('classifier:results')}?{ids_query(predictions)}").content.decode()
    ids = ids_query(predictions).replace(",", "%2C")
    assert f'href="{reverse("classifier:results-csv")}?{ids}"' in page
    assert f'href="{reverse("classifier:results-json")}?{ids}"' in page


def test_anonymous_uploader_downloads_own_results_as_csv(client):
    predictions = upload_two(client)
    other = PredictionFactory()  # someone else's: left out
    response = client.get(f"{reverse('classifier:results-csv')}?{ids_query([*predictions, other])}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[0] for row in rows[1:]] == [str(p.pk) for p in predictions]
    assert [row[2] for row in rows[1:]] == ["red.png", "blue.png"]


def test_anonymous_uploader_downloads_own_results_as_json(client):
    predictions = upload_two(client)
    response = client.get(f"{reverse('classifier:results-json')}?{ids_query(predictions)}")
    assert response.status_code == 200
    records = response.json()
    assert [r["id"] for r in records] == [p.pk for p in predictions]
    assert records[0]["filename"] == "red.png"
    assert records[0]["prediction"] == predictions[0].class_name
    assert abs(sum(records[0]["probabilities"].values()) - 1) < 1e-3  # ten values to 4 decimals


@pytest.mark.parametrize("name", ["classifier:results-csv", "classifier:results-json"])
def test_other_visitors_cannot_download_someone_elses_results(client, name):
    predictions = upload_two(client)
    response = Client().get(f"{reverse(name)}?{ids_query(predictions)}")
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_logged_in_users_download_any_results(client, user):
    predictions = [PredictionFactory(), PredictionFactory()]
    client.force_login(user)
    response = client.get(f"{reverse('classifier:results-json')}?{ids_query(predictions)}")
    assert [r["id"] for r in response.json()] == [p.pk for p in predictions]
