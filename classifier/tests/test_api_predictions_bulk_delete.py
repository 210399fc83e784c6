"""POST /api/predictions/bulk-delete/: staff only, optionally filtered."""

import pytest
from django.urls import reverse

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db

URL = reverse("api:prediction-bulk-delete")


def test_anonymous_and_users_may_not_bulk_delete(anonymous_client, user_client):
    PredictionFactory.create_batch(2)
    assert anonymous_client.post(URL, {"all": True}, format="json").status_code == 401
    assert user_client.post(URL, {"all": True}, format="json").status_code == 403
    assert Prediction.objects.count() == 2


def test_staff_deletes_matching_records_and_their_images(
    staff_client, media_root, django_capture_on_commit_callbacks
):
    keep = PredictionFactory(source="web")
    PredictionFactory.create_batch(3, source="cli")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(URL, {"source": "cli"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"deleted": 3}
    assert list(Prediction.objects.all()) == [keep]
    assert media_files(media_root) == [media_root / keep.image.name]


def test_filename_filter(staff_client):
    PredictionFactory(original_filename="junk_1.png")
    PredictionFactory(original_filename="keep.png")
    response = staff_client.post(URL, {"filename": "junk"}, format="json")
    assert response.json() == {"deleted": 1}
    assert Prediction.objects.get().original_filename == "keep.png"


def test_no_filter_requires_all_true(staff_client):
    PredictionFactory.create_batch(2)
    response = staff_client.post(URL, {}, format="json")
    assert response.status_code == 400
    assert Prediction.objects.count() == 2
    response = staff_client.post(URL, {"all": True}, format="json")
    assert response.json() == {"deleted": 2}
    assert Prediction.objects.count() == 0


def test_invalid_filter_is_400(staff_client):
    PredictionFactory()
    response = staff_client.post(URL, {"class_index": 99}, format="json")
    assert response.status_code == 400
    assert "class_index" in response.json()
    assert Prediction.objects.count() == 1
