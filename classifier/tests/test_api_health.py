"""GET /api/health/live and /api/health/ready: public probes."""

import json

import pytest
from django.db import OperationalError
from django.urls import reverse

pytestmark = pytest.mark.django_db

LIVE = reverse("api:health-live")
READY = reverse("api:health-ready")


def test_live_needs_nothing(anonymous_client):
    response = anonymous_client.get(LIVE)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_paths_work_without_trailing_slash(anonymous_client):
    assert anonymous_client.get("/api/health/live").status_code == 200
    assert anonymous_client.get("/api/health/ready").status_code == 200


def test_ready_when_model_and_database_work(anonymous_client):
    response = anonymous_client.get(READY)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["model"]["ok"] is True
    assert body["checks"]["database"]["ok"] is True


def assert_not_ready(client, reason_fragment):
    response = client.get(READY)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert reason_fragment in body["reason"]
    return body


def test_missing_model_file(model_copy, anonymous_client):
    model_path, _ = model_copy
    model_path.unlink()
    body = assert_not_ready(anonymous_client, "does not exist")
    assert body["checks"]["database"]["ok"] is True


def test_corrupt_model_file(model_copy, anonymous_client):
    model_path, _ = model_copy
    model_path.write_bytes(b"this is not a flatbuffer")
    assert_not_ready(anonymous_client, "sha256")


def test_corrupt_model_whose_manifest_hash_matches(model_copy, anonymous_client):
    import hashlib

    model_path, manifest_path = model_copy
    garbage = b"this is not a flatbuffer" * 10
    model_path.write_bytes(garbage)
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(garbage).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    assert_not_ready(anonymous_client, "could not be loaded")


def test_manifest_with_other_classes(model_copy, anonymous_client):
    _, manifest_path = model_copy
    manifest = json.loads(manifest_path.read_text())
    manifest["classes"][0]["name"], manifest["classes"][1]["name"] = "Merging", "Disturbed"
    manifest_path.write_text(json.dumps(manifest))
    assert_not_ready(anonymous_client, "classes do not match")


def test_recovers_without_restart_when_the_model_returns(model_copy, anonymous_client):
    model_path, _ = model_copy
    content = model_path.read_bytes()
    model_path.unlink()
    assert anonymous_client.get(READY).status_code == 503
    model_path.write_bytes(content)
    assert anonymous_client.get(READY).status_code == 200


def test_database_down(monkeypatch, anonymous_client):
    from django.db import connection

    def refuse():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "ensure_connection", refuse)
    body = assert_not_ready(anonymous_client, "database unavailable")
    assert body["checks"]["model"]["ok"] is True
