"""GET and DELETE /api/predictions/{id}/: users read, only staff delete."""

import pytest
from django.urls import reverse

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db


def url(pk):
    return reverse("api:prediction-detail", args=[pk])


def test_anonymous_may_not_read(anonymous_client):
    prediction = PredictionFactory()
    assert anonymous_client.get(url(prediction.pk)).status_code == 401


def test_user_reads_one_record(user_client):
    prediction = PredictionFactory(original_filename="ngc1300.jpg")
    response = user_client.get(url(prediction.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == prediction.pk
    assert body["filename"] == "ngc1300.jpg"
    assert body["prediction"] == prediction.class_name
    assert body["probabilities"] == {
        name: round(p, 4) for name, p in prediction.probabilities_by_name.items()
    }
    assert body["image_url"] == f"http://testserver/media/{prediction.image.name}"


def test_missing_record_is_404(user_client):
    assert user_client.get(url(999)).status_code == 404


def test_user_may_not_delete(user_client, media_root):
    prediction = PredictionFactory()
    assert user_client.delete(url(prediction.pk)).status_code == 403
    assert Prediction.objects.filter(pk=prediction.pk).exists()
    assert len(media_files(media_root)) == 1


def test_anonymous_may_not_delete(anonymous_client):
    prediction = PredictionFactory()
    assert anonymous_client.delete(url(prediction.pk)).status_code == 401
    assert Prediction.objects.filter(pk=prediction.pk).exists()


def test_staff_deletes_the_record_and_its_image(staff_client, media_root, django_capture_on_commit_callbacks):
    prediction = PredictionFactory()
    stored = media_root / prediction.image.name
    assert stored.is_file()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.delete(url(prediction.pk))
    assert response.status_code == 204
    assert not Prediction.objects.filter(pk=prediction.pk).exists()
    assert not stored.exists()


def test_shared_image_survives_until_its_last_record_goes(
    staff_client, media_root, django_capture_on_commit_callbacks
):
    first = PredictionFactory(seed=7)
    second = PredictionFactory(seed=7, image=first.image.name)
    assert first.image.name == second.image.name
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.delete(url(first.pk))
    assert (media_root / second.image.name).is_file()
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.delete(url(second.pk))
    assert media_files(media_root) == []


def test_staff_delete_of_missing_record_is_404(staff_client):
    assert staff_client.delete(url(999)).status_code == 404
