"""The model page (/model/): public model card, metrics and training data summary."""

from __future__ import annotations

import pytest
from django.urls import reverse

from classifier.inference import get_classifier
from classifier.views import KEY_PATH_SEPARATOR, metrics_for_display, model_figures

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

    names = [asset["url"].rsplit("/", 1)[-1] for asset in response.context["assets"]]
    assert "confusion_matrix.png" in names
    assert "reliability.png" in names
    for asset in response.context["assets"]:
        image = client.get(asset["url"])
        assert image.status_code == 200
        assert image["Content-Type"].startswith("image/")


def test_the_model_folder_itself_is_not_served(client):
    assert client.get("/static/galaxy10.tflite").status_code == 404
    assert client.get("/static/galaxy10.json").status_code == 404


def test_model_page_is_503_when_the_model_is_missing(client, settings, tmp_path):
    settings.MODEL_PATH = tmp_path / "absent.tflite"
    settings.MODEL_MANIFEST = tmp_path / "absent.json"

    response = client.get(MODEL_URL)

    assert response.status_code == 503
    assert "absent.json" in response.content.decode()


def test_metrics_are_tabulated_per_evaluation_set_and_per_class():
    recall = [i / 10 for i in range(10)]
    matrix = [[int(i == j) * 3 for j in range(10)] for i in range(10)]
    metrics = {
        "galaxy10_decals_dev": {
            "n": 30,
            "top1": 0.5667,
            "per_class_recall": recall,
            "confusion_matrix": matrix,
        },
        "test/gz2": {"images": 1200, "top1": 0.71, "ece": 0.031},
        "export_check": {"max_abs_diff": 0.0031},
    }

    shown = metrics_for_display(metrics)

    assert shown["columns"] == ["n", "top1", "images", "ece"]
    assert shown["rows"] == [
        ("galaxy10 decals dev", ["30", "0.567", "", ""]),
        ("test/gz2", ["", "0.710", "1,200", "0.031"]),
    ]
    assert shown["per_class"]["columns"] == ["galaxy10 decals dev: per class recall"]
    assert [cells for _class, cells in shown["per_class"]["rows"]][9] == ["0.900"]
    assert shown["matrices"][0]["rows"][2][1] == matrix[2]
    assert shown["other"] == [(f"export check {KEY_PATH_SEPARATOR} max abs diff", "0.003")]


def test_figures_are_the_manifests_that_exist_under_the_static_root():
    manifest = {
        "figures": {"confusion_matrix": "model/confusion_matrix.png", "reliability": "model/absent.png"}
    }

    assert model_figures(manifest) == [
        {"label": "Confusion matrix", "url": "/static/model/confusion_matrix.png"},
    ]
