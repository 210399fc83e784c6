"""/metrics: who may read it, and that each metric moves when its event happens."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from classifier.core.exceptions import REFUSAL_CODES, FileRefusal
from classifier.predictions.inference import get_classifier

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


# --- access ------------------------------------------------------------------------------------


def test_a_loopback_caller_may_read_the_metrics(client):
    # Django's test client calls from 127.0.0.1.
    assert "django_http_requests_latency_seconds_by_view_method" in client.get("/metrics").content.decode()


@pytest.mark.parametrize("address", ["203.0.113.7", "10.0.0.5", "::ffff:8.8.8.8", "not-an-ip"])
def test_anyone_else_gets_a_404(address):
    response = Client(REMOTE_ADDR=address).get("/metrics")
    assert response.status_code == 404
    assert "galaxy_" not in response.content.decode()


def test_the_configured_token_opens_it_from_anywhere(settings):
    settings.METRICS_TOKEN = TOKEN
    remote = Client(REMOTE_ADDR="203.0.113.7")
    assert remote.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert remote.get("/metrics", headers={"authorization": f"Bearer {TOKEN}x"}).status_code == 404
    assert remote.get("/metrics", headers={"authorization": f"Token {TOKEN}"}).status_code == 404


def test_a_wrong_token_is_refused_even_from_loopback(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics", headers={"authorization": "Bearer guess"}).status_code == 404


def test_behind_a_proxy_loopback_proves_nothing_and_only_the_token_counts(client, settings):
    settings.BEHIND_PROXY = True
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_loopback_access_can_be_switched_off(client, settings):
    settings.METRICS_ALLOW_LOOPBACK = False
    assert client.get("/metrics").status_code == 404


# --- what is measured --------------------------------------------------------------------------


def test_requests_are_counted_by_view_and_status(client):
    labels = {"view": "api:health-live", "method": "GET", "status": "200"}
    before = sample("django_http_responses_total_by_status_view_method_total", **labels)
    for _ in range(3):
        client.get("/api/health/live")
    scraped = scrape(client)
    key = ("django_http_responses_total_by_status_view_method_total", tuple(sorted(labels.items())))
    assert scraped[key] == before + 3
    latency = (
        "django_http_requests_latency_seconds_by_view_method_count",
        (("method", "GET"), ("view", "api:health-live")),
    )
    assert scraped[latency] >= 3


def test_a_prediction_is_counted_by_class_and_source_with_its_inference_time(anonymous_client, image_bytes):
    inference_before = sample("galaxy_model_inference_seconds_count")
    response = anonymous_client.post(
        "/api/predictions/",
        {"image": [SimpleUploadedFile("a.png", image_bytes()), SimpleUploadedFile("b.png", image_bytes())]},
        format="multipart",
    )
    assert response.status_code == 201
    class_name = response.json()["predictions"][0]["prediction"]
    after = scrape(Client())
    assert after[("galaxy_predictions_total", (("class_name", class_name), ("source", "api")))] >= 2
    assert sample("galaxy_model_inference_seconds_count") == inference_before + 2


def test_a_page_upload_counts_as_source_web(client, image_bytes):
    response = client.post("/", {"images": SimpleUploadedFile("a.png", image_bytes())})
    assert response.status_code in (200, 302)
    assert (
        sum(
            value
            for (name, labels), value in scrape(client).items()
            if name == "galaxy_predictions_total" and ("source", "web") in labels
        )
        >= 1
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"not an image at all", "not_an_image"), (b"", "empty_file")],
)
def test_refused_uploads_are_counted_by_reason(anonymous_client, content, reason):
    before = sample("galaxy_upload_refusals_total", reason=reason)
    response = anonymous_client.post(
        "/api/predictions/", {"image": SimpleUploadedFile("x.png", content)}, format="multipart"
    )
    assert response.status_code == 400
    assert sample("galaxy_upload_refusals_total", reason=reason) == before + 1


# The reason label's values, as docs/operations.md lists them for alerts and dashboards.
DOCUMENTED_REASONS = {
    "not_an_image",
    "format_not_accepted",
    "file_too_large",
    "too_many_pixels",
    "too_many_files",
    "empty_file",
    "no_pixels",
    "undecodable",
    "no_file",
    "request_too_large",
    "other",
}


def test_refusal_codes_are_the_documented_reasons():
    assert set(REFUSAL_CODES.values()) <= DOCUMENTED_REASONS
    assert FileRefusal("a.png", "not a recognised image format").code == "not_an_image"
    assert FileRefusal("a.png", "a template no code names").code == "other"
    assert FileRefusal("a.png", "not a recognised image format", code="undecodable").code == "undecodable"


def test_a_file_over_the_size_limit_is_counted(anonymous_client, image_bytes, settings):
    settings.MAX_UPLOAD_BYTES = 100
    before = sample("galaxy_upload_refusals_total", reason="file_too_large")
    response = anonymous_client.post(
        "/api/predictions/", {"image": SimpleUploadedFile("big.png", image_bytes())}, format="multipart"
    )
    assert response.status_code == 413
    assert sample("galaxy_upload_refusals_total", reason="file_too_large") == before + 1


def test_a_request_over_the_body_limit_is_counted(client, settings):
    settings.MAX_REQUEST_BYTES = 1000
    before = sample("galaxy_upload_refusals_total", reason="request_too_large")
    response = client.post("/api/predictions/", data=b"x" * 2000, content_type="application/octet-stream")
    assert response.status_code == 413
    assert sample("galaxy_upload_refusals_total", reason="request_too_large") == before + 1


def test_the_served_model_is_an_info_metric(client):
    classifier = get_classifier()
    labels = (
        ("backend", classifier.backend_name),
        ("model_sha256", classifier.model_sha256),
        ("model_version", classifier.model_version),
    )
    assert scrape(client)[("galaxy_model_info", labels)] == 1


def database_errors() -> float:
    # The type label is the driver's class (sqlite3.OperationalError, psycopg's UndefinedTable, ...).
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == "django_db_errors_total" and sample.labels["alias"] == "default"
    )


def test_database_errors_are_counted(client):
    before = database_errors()
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_for_metrics")
    assert database_errors() == before + 1


# --- the request event --------------------------------------------------------------------------


def test_the_request_event_carries_the_id_and_hides_reset_tokens(client, settings, caplog):
    settings.LOG_REQUESTS = True
    with caplog.at_level("INFO", logger="galaxysite.request"):
        response = client.get("/api/health/live")
        client.get("/accounts/reset/MQ/c4t5-0123456789abcdef0123456789abcdef/")
    first, second = (r for r in caplog.records if r.name == "galaxysite.request")
    assert (first.method, first.path, first.status) == ("GET", "/api/health/live", 200)
    assert first.request_id == response["X-Request-ID"]
    assert second.path == "/accounts/reset/MQ/***/"
    assert "0123456789abcdef" not in caplog.text
