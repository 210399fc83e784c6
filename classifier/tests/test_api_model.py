"""GET /api/model/: public metadata and metrics of the served model."""

import json

import pytest
from django.urls import reverse

from classifier.core.galaxy10 import CLASS_NAMES

pytestmark = pytest.mark.django_db

URL = reverse("api:model")


def test_anyone_reads_the_model_metadata(anonymous_client, settings):
    manifest = json.loads(settings.MODEL_MANIFEST.read_text())
    response = anonymous_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == manifest["model_version"]
    assert body["sha256"] == manifest["sha256"]
    assert body["backend"] in {"ai-edge-litert", "tflite-runtime"}
    assert [c["name"] for c in body["classes"]] == list(CLASS_NAMES)
    assert body["metrics"] == manifest["metrics"]
    assert body["preprocessing"]["size"] == manifest["preprocessing"]["size"]


def test_unavailable_model_is_503_with_reason(model_copy, anonymous_client):
    _, manifest_path = model_copy
    manifest_path.unlink()
    response = anonymous_client.get(URL)
    assert response.status_code == 503
    assert "manifest" in response.json()["reason"]
