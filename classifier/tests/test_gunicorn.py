"""galaxysite/gunicorn.py: a real gunicorn loads the model in each worker before any request."""

import urllib.request

import pytest

from classifier.tests.gunicorn_server import running_gunicorn

pytestmark = pytest.mark.slow


def test_each_worker_loads_the_model_before_its_first_request(tmp_path):
    with running_gunicorn(tmp_path, workers=2) as server:
        # No request has been sent: only the post_worker_init hook can have loaded it.
        text = server.wait_for_log("loaded model", count=2)
        assert "galaxy10.tflite" in text
        with urllib.request.urlopen(f"{server.url}/api/health/live/", timeout=10) as response:  # noqa: S310
            assert response.status == 200


def test_a_broken_model_does_not_stop_the_worker(tmp_path):
    with running_gunicorn(tmp_path, MODEL_PATH=str(tmp_path / "missing.tflite")) as server:
        server.wait_for_log("model not loaded at worker start")
        with urllib.request.urlopen(f"{server.url}/api/health/live/", timeout=10) as response:  # noqa: S310
            assert response.status == 200
