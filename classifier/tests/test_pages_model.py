"""The model page (/model/): public model card, metrics and training data summary."""

from __future__ import annotations

import pytest
from django.urls import reverse

from classifier.inference import get_classifier

pytestmark = pytest.mark.django_db

MODEL_URL = reverse("classifier:model")


def test_model_page_shows_the_served_model(client):
    served = get_classifier()

    response = client.get(MODEL_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert f'<dd id="model-version">{served.model_version}</dd>' in html
    assert served.model_sha256 in html
    assert served.backend_name in html
    assert 'id="metrics"' in html


def test_model_page_serves_the_images_its_manifest_lists(client):
    response = client.get(MODEL_URL)

    for asset in response.context["assets"]:
        image = client.get(asset["url"])
        assert image.status_code == 200
        assert image["Content-Type"].startswith("image/")


def test_model_asset_refuses_files_not_listed_in_the_manifest(client):
    assert client.get(reverse("classifier:model-asset", args=["galaxy10.tflite"])).status_code == 404
    assert client.get(reverse("classifier:model-asset", args=["galaxy10.json"])).status_code == 404


def test_model_page_is_503_when_the_model_is_missing(client, settings, tmp_path):
    settings.MODEL_PATH = tmp_path / "absent.tflite"
    settings.MODEL_MANIFEST = tmp_path / "absent.json"

    response = client.get(MODEL_URL)

    assert response.status_code == 503
    assert "absent.json" in response.content.decode()
