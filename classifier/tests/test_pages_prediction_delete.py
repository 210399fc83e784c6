"""Deleting one prediction on the site (/predictions/<pk>/delete/): staff confirm on a page of
the site's own, and the row and its stored image go through the same service as the API's DELETE."""

from __future__ import annotations

import pytest
from django.urls import reverse

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db


def delete_url(prediction):
    return reverse("classifier:prediction-delete", args=[prediction.pk])


def test_staff_confirm_on_the_sites_own_page(client, staff):
    prediction = PredictionFactory(original_filename="m101.png")
    client.force_login(staff)
    response = client.get(delete_url(prediction))
    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == ["classifier/prediction_delete.html", "base.html"]
    html = response.content.decode()
    assert "m101.png" in html
    assert f'action="{delete_url(prediction)}"' in html
    assert "/admin/" not in html.split("<main", 1)[1]
    # Asking deletes nothing.
    assert Prediction.objects.filter(pk=prediction.pk).exists()


def test_staff_delete_removes_the_row_and_its_image(
    client, staff, media_root, django_capture_on_commit_callbacks
):
    doomed, kept = PredictionFactory(original_filename="doomed.png"), PredictionFactory()
    assert len(media_files(media_root)) == 2
    client.force_login(staff)
    # The file goes once the delete commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(delete_url(doomed), follow=True)
    assert response.redirect_chain[-1][0] == reverse("classifier:history")
    assert "doomed.png" in response.content.decode()  # the message names what went
    assert list(Prediction.objects.values_list("pk", flat=True)) == [kept.pk]
    assert len(media_files(media_root)) == 1


def test_readers_who_are_not_staff_may_not_delete(client, user, media_root):
    prediction = PredictionFactory()
    client.force_login(user)
    assert client.get(delete_url(prediction)).status_code == 403
    assert client.post(delete_url(prediction)).status_code == 403
    assert Prediction.objects.filter(pk=prediction.pk).exists()
    assert len(media_files(media_root)) == 1


def test_anonymous_visitors_are_sent_to_log_in(client):
    prediction = PredictionFactory()
    response = client.post(delete_url(prediction))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Prediction.objects.filter(pk=prediction.pk).exists()


def test_an_unknown_prediction_is_404(client, staff):
    client.force_login(staff)
    assert client.post(reverse("classifier:prediction-delete", args=[999999])).status_code == 404


def test_the_detail_page_links_staff_to_the_sites_delete_page(client, user, staff):
    prediction = PredictionFactory()
    client.force_login(user)
    assert delete_url(prediction) not in client.get(prediction.get_absolute_url()).content.decode()
    client.force_login(staff)
    html = client.get(prediction.get_absolute_url()).content.decode()
    assert delete_url(prediction) in html
    assert reverse("admin:classifier_prediction_delete", args=[prediction.pk]) not in html
