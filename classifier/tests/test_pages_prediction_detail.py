"""The detail page of one prediction (/predictions/<pk>/) and the batch results grid (/results/).

Logged-in users read every record; an anonymous visitor only the ones uploaded
in their own session; staff also get a link to the admin and one to delete
(test_pages_prediction_delete.py).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from classifier.models import Prediction
from classifier.predictions.ownership import OWN_PREDICTIONS_SESSION_KEY
from classifier.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def unsure_prediction() -> Prediction:
    probabilities = [0.02] * 10
    probabilities[5] = 0.40  # Barred Spiral
    probabilities[6] = 0.44  # Unbarred Tight Spiral
    return PredictionFactory(
        probabilities=probabilities,
        class_index=6,
        class_name="Unbarred Tight Spiral",
        confidence=0.44,
        original_filename="ngc1300.png",
    )


def sure_prediction() -> Prediction:
    probabilities = [0.01] * 10
    probabilities[2] = 0.91
    return PredictionFactory(
        probabilities=probabilities, class_index=2, class_name="Round Smooth", confidence=0.91
    )


def remember(client, *predictions: Prediction) -> None:
    session = client.session
    session[OWN_PREDICTIONS_SESSION_KEY] = [p.pk for p in predictions]
    session.save()


def test_anonymous_is_sent_to_login_for_someone_elses_prediction(client):
    prediction = sure_prediction()

    response = client.get(prediction.get_absolute_url())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_sees_a_prediction_uploaded_in_their_session(client):
    prediction = sure_prediction()
    remember(client, prediction)

    response = client.get(prediction.get_absolute_url())

    assert response.status_code == 200


def test_detail_shows_class_description_confidence_and_all_probabilities(client, user):
    prediction = sure_prediction()
    client.force_login(user)

    response = client.get(prediction.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert '<h2 class="prediction-class" id="prediction-class">Round Smooth</h2>' in html
    assert "typical of elliptical galaxies" in html
    assert "<strong>91.0%</strong>" in html
    assert html.count('<td class="prob-value">') == 10
    assert 'class="bar w-91"' in html
    assert prediction.sha256 in html
    assert prediction.model_version in html
    assert "3.5 ms" in html
    assert f'alt="Uploaded image {prediction.original_filename}, classified as Round Smooth"' in html
    assert "is-second" not in html
    assert 'id="unsure-note"' not in html


def test_unsure_prediction_highlights_the_top_two(client, user):
    prediction = unsure_prediction()
    client.force_login(user)

    html = client.get(prediction.get_absolute_url()).content.decode()

    assert '<tr class="is-top" data-class-index="6">' in html
    assert '<tr class="is-second" data-class-index="5">' in html
    assert 'id="unsure-note"' in html
    assert "<strong>Barred Spiral</strong> (40.0%)" in html


def test_unsure_threshold_is_a_setting(client, user, settings):
    settings.UNSURE_CONFIDENCE_THRESHOLD = 0.95
    prediction = sure_prediction()
    client.force_login(user)

    html = client.get(prediction.get_absolute_url()).content.decode()

    assert 'id="unsure-note"' in html
    assert "below 95%" in html


def test_staff_get_admin_links_others_do_not(client, user, staff):
    prediction = sure_prediction()
    delete_url = reverse("admin:classifier_prediction_change", args=[prediction.pk])

    client.force_login(user)
    assert delete_url not in client.get(prediction.get_absolute_url()).content.decode()
    client.force_login(staff)
    assert delete_url in client.get(prediction.get_absolute_url()).content.decode()


def test_unknown_prediction_is_404(client, user):
    client.force_login(user)

    assert client.get(reverse("classifier:prediction-detail", args=[999999])).status_code == 404


def test_results_grid_shows_only_own_predictions_to_anonymous(client):
    mine = [sure_prediction(), unsure_prediction()]
    someone_elses = PredictionFactory(original_filename="not-mine.png")
    remember(client, *mine)
    ids = ",".join(str(p.pk) for p in [*mine, someone_elses])

    response = client.get(f"{reverse('classifier:results')}?ids={ids}")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="grid-card') == 2
    assert "not-mine.png" not in html
    assert "One requested result is not shown" in html
    assert "badge-unsure" in html


def test_results_grid_keeps_the_requested_order(client, user):
    first, second = sure_prediction(), unsure_prediction()
    client.force_login(user)

    html = client.get(f"{reverse('classifier:results')}?ids={second.pk},{first.pk}").content.decode()

    assert html.index(f'data-prediction-id="{second.pk}"') < html.index(f'data-prediction-id="{first.pk}"')


def test_results_grid_for_anonymous_without_own_predictions_asks_to_log_in(client):
    prediction = sure_prediction()

    response = client.get(f"{reverse('classifier:results')}?ids={prediction.pk}")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_results_grid_ignores_garbage_ids(client, user):
    client.force_login(user)

    response = client.get(f"{reverse('classifier:results')}?ids=abc,-1,,1e9")

    assert response.status_code == 200
    assert "No results to show." in response.content.decode()
