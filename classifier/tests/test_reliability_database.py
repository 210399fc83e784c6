"""The database goes away and comes back: clear 503s meanwhile, no restart needed after.

Requests go through Django's real WSGI handler (not the test client), so the
request_started / request_finished connection housekeeping that production
relies on runs as it would under gunicorn. The outage is real: the connection
is pointed at a closed loopback port (PostgreSQL) or at a database file that
cannot be opened (SQLite), or its server process is terminated.
"""

import json
import socket
from contextlib import contextmanager

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token

from classifier.models import Prediction
from classifier.tests.utils import make_image_bytes, media_files

pytestmark = pytest.mark.django_db(transaction=True)

READY = reverse("api:health-ready")
PREDICTIONS = reverse("api:prediction-list")
application = WSGIHandler()


def call(request):
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = int(status.split()[0])
        captured["headers"] = dict(headers)

    result = application(request.environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()  # fires request_finished, as a WSGI server does
    return captured["status"], captured["headers"], body


def ready():
    return call(RequestFactory().get(READY))


def predict(name="g.png", color=(10, 20, 30)):
    upload = SimpleUploadedFile(name, make_image_bytes(color=color), "image/png")
    return call(RequestFactory().post(PREDICTIONS, {"image": upload}))


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def database_unreachable(tmp_path):
    saved = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    else:
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-directory" / "db.sqlite3")
    connection.close()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def assert_clear_json_503(status, headers, body):
    assert status == 503, body
    assert headers["Content-Type"] == "application/json"
    assert b"Traceback" not in body
    return json.loads(body)


def test_outage_gives_clear_503s_and_recovery_needs_no_restart(tmp_path, media_root, user):
    token = Token.objects.create(user=user)
    assert ready()[0] == 200

    with database_unreachable(tmp_path):
        body = assert_clear_json_503(*ready())
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["model"]["ok"] is True
        assert "database unavailable: OperationalError" in body["reason"]

        body = assert_clear_json_503(*predict())
        assert body == {
            "detail": "storage is unavailable",
            "reason": "the database is unavailable, nothing was saved",
        }
        assert media_files(media_root) == []

        listing = RequestFactory().get(PREDICTIONS, HTTP_AUTHORIZATION=f"Token {token.key}")
        body = assert_clear_json_503(*call(listing))
        assert body["detail"] == "the database is unavailable"

        live = call(RequestFactory().get(reverse("api:health-live")))
        assert live[0] == 200

    assert ready()[0] == 200
    status, _, body = predict()
    assert status == 201, body
    assert Prediction.objects.count() == 1
    assert len(media_files(media_root)) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL server process")
def test_a_connection_killed_by_the_server_is_replaced_transparently(media_root):
    """With persistent connections, the server may drop one between requests (restart, failover)."""
    saved_max_age = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 600
    connection.close()
    try:
        assert ready()[0] == 200
        assert connection.connection is not None, "the connection was not kept between requests"
        pid = connection.connection.info.backend_pid
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])

        assert ready()[0] == 200
        assert connection.connection.info.backend_pid != pid
        status, _, body = predict()
        assert status == 201, body
        assert Prediction.objects.count() == 1
    finally:
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = saved_max_age


@pytest.mark.parametrize("breakage", ["missing", "corrupt", "mismatched"])
def test_a_broken_model_leaves_the_log_readable(breakage, model_copy, client, user, media_root):
    from classifier.tests.factories import PredictionFactory

    record = PredictionFactory()
    model_path, manifest_path = model_copy
    if breakage == "missing":
        model_path.unlink()
    elif breakage == "corrupt":
        model_path.write_bytes(b"not a tflite model")
    else:
        manifest_path.write_text(manifest_path.read_text().replace('"sha256": "', '"sha256": "0'))

    body = assert_clear_json_503(*ready())
    assert body["checks"]["model"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert assert_clear_json_503(*predict())["detail"] == "the model is unavailable"
    assert Prediction.objects.count() == 1

    client.force_login(user)
    assert client.get(reverse("api:prediction-list")).json()["count"] == 1
    assert client.get(reverse("api:prediction-detail", args=[record.pk])).status_code == 200
    assert record.original_filename in client.get(reverse("classifier:history")).content.decode()
    assert client.get(reverse("classifier:history-csv")).status_code == 200
