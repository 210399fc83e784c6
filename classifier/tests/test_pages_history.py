"""The history page (/history/) and its CSV export (/history.csv).

Reading the audit log needs a login: anonymous visitors are sent to the login
page. All filter, sort and page state lives in the query string.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from classifier.models import Prediction
from classifier.predictions.exports import CSV_COLUMNS
from classifier.tests.factories import PredictionFactory
from classifier.web.views import HISTORY_PAGE_SIZE

pytestmark = pytest.mark.django_db

HISTORY_URL = reverse("classifier:history")
CSV_URL = reverse("classifier:history-csv")


def test_anonymous_is_refused_history(client):
    PredictionFactory()

    response = client.get(HISTORY_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={HISTORY_URL}"


def test_anonymous_is_refused_csv(client):
    response = client.get(CSV_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_history_lists_predictions_newest_first_with_thumbnails(client, user):
    older = PredictionFactory(original_filename="older.png", created_at=timezone.now() - dt.timedelta(days=1))
    newer = PredictionFactory(original_filename="newer.png")
    client.force_login(user)

    response = client.get(HISTORY_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("newer.png") < html.index("older.png")
    assert f'src="{newer.image.url}"' in html
    assert f'href="{older.get_absolute_url()}"' in html
    assert "2 predictions" in html
    assert '<option value="" selected>Any class</option>' in html


def test_filters_by_class_source_and_filename(client, user):
    PredictionFactory(original_filename="m51.png", source=Prediction.Source.API)
    wanted = PredictionFactory(original_filename="M51-deep.png", source=Prediction.Source.WEB)
    PredictionFactory(original_filename="andromeda.png", source=Prediction.Source.WEB)
    client.force_login(user)

    response = client.get(
        HISTORY_URL, {"filename": "m51", "source": "web", "class_index": wanted.class_index}
    )

    html = response.content.decode()
    assert "M51-deep.png" in html
    assert "andromeda.png" not in html
    assert ">m51.png<" not in html
    assert "1 prediction " in html
    assert 'value="m51"' in html


def test_filters_by_date_range(client, user):
    now = timezone.now()
    PredictionFactory(original_filename="last-year.png", created_at=now - dt.timedelta(days=365))
    PredictionFactory(original_filename="this-week.png", created_at=now - dt.timedelta(days=2))
    client.force_login(user)

    after = (now - dt.timedelta(days=7)).date().isoformat()
    html = client.get(HISTORY_URL, {"created_after": after}).content.decode()

    assert "this-week.png" in html
    assert "last-year.png" not in html
    assert f'value="{after}"' in html


def test_sorts_by_confidence(client, user):
    PredictionFactory(original_filename="low.png", confidence=0.3)
    PredictionFactory(original_filename="high.png", confidence=0.9)
    client.force_login(user)

    ascending = client.get(HISTORY_URL, {"ordering": "confidence"}).content.decode()
    descending = client.get(HISTORY_URL, {"ordering": "-confidence"}).content.decode()

    assert ascending.index("low.png") < ascending.index("high.png")
    assert descending.index("high.png") < descending.index("low.png")


def test_pagination_links_keep_the_filters(client, user):
    PredictionFactory.create_batch(HISTORY_PAGE_SIZE + 3, source=Prediction.Source.CLI)
    PredictionFactory(source=Prediction.Source.WEB)
    client.force_login(user)

    first = client.get(HISTORY_URL, {"source": "cli", "ordering": "-confidence"})
    second = client.get(HISTORY_URL, {"source": "cli", "ordering": "-confidence", "page": 2})

    assert "Page 1 of 2" in first.content.decode()
    assert 'href="?source=cli&amp;ordering=-confidence&amp;page=2"' in first.content.decode()
    assert second.content.decode().count("<tr data-prediction-id=") == 3


def test_invalid_filter_is_400_with_message(client, user):
    client.force_login(user)

    response = client.get(HISTORY_URL, {"class_index": "42"})

    assert response.status_code == 400
    assert "Some filters are not valid" in response.content.decode()


def test_csv_link_carries_the_filters(client, user):
    client.force_login(user)

    html = client.get(HISTORY_URL, {"source": "api", "page": "1"}).content.decode()

    assert f'href="{CSV_URL}?source=api"' in html


def test_csv_export_uses_the_same_filters(client, user):
    PredictionFactory(original_filename="keep.png", source=Prediction.Source.API)
    PredictionFactory(original_filename="drop.png", source=Prediction.Source.WEB)
    client.force_login(user)

    response = client.get(CSV_URL, {"source": "api"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[2] for row in rows[1:]] == ["keep.png"]


def test_csv_export_refuses_invalid_filters(client, user):
    client.force_login(user)

    response = client.get(CSV_URL, {"created_after": "not-a-date"})

    assert response.status_code == 400
    assert "created_after" in response.json()
