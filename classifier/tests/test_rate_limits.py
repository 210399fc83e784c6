"""Rate limits that hold: keyed on the connecting address (or the configured proxy hops
only), shared by the upload page and the API, and counted once for all worker processes."""

from __future__ import annotations

import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.throttling import AnonRateThrottle

from classifier.models import Prediction
from classifier.tests.gunicorn_server import post_image, running_gunicorn, wait_until_live
from classifier.tests.utils import make_image_bytes

API_URL = reverse("api:prediction-list")
PAGE_URL = reverse("classifier:upload")


def api_upload(client, **headers):
    image = SimpleUploadedFile("g.png", make_image_bytes(), "image/png")
    return client.post(API_URL, {"image": [image]}, format="multipart", **headers).status_code


def page_upload(client, **headers):
    image = SimpleUploadedFile("g.png", make_image_bytes(), "image/png")
    return client.post(PAGE_URL, {"images": [image]}, **headers)


@pytest.fixture
def three_per_minute(monkeypatch):
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})


@pytest.mark.django_db
def test_a_spoofed_x_forwarded_for_does_not_escape_the_limit(three_per_minute, anonymous_client):
    statuses = [api_upload(anonymous_client, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}") for n in range(6)]
    assert statuses == [201, 201, 201, 429, 429, 429]
    # And the audit log records the connecting address, not the claimed one.
    assert set(Prediction.objects.values_list("client_ip", flat=True)) == {"127.0.0.1"}


@pytest.mark.django_db
def test_behind_one_proxy_only_the_address_it_appended_counts(three_per_minute, settings, anonymous_client):
    settings.BEHIND_PROXY = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The client prepends whatever it likes; the proxy appends the real address last.
    spoofed = [
        api_upload(anonymous_client, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 203.0.113.7") for n in range(4)
    ]
    assert spoofed == [201, 201, 201, 429]
    assert api_upload(anonymous_client, HTTP_X_FORWARDED_FOR="203.0.113.8") == 201
    assert Prediction.objects.filter(client_ip="203.0.113.7").count() == 3


@pytest.mark.django_db
def test_the_upload_page_has_the_same_limit(three_per_minute, client, media_root):
    statuses = [page_upload(client, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(3)]
    assert statuses == [302, 302, 302]
    refused = page_upload(client)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Too many uploads" in refused.content.decode()
    assert Prediction.objects.count() == 3
    # The page's script asks for JSON and gets the reason as JSON.
    as_json = page_upload(client, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 429
    assert "Too many uploads" in as_json.json()["request_errors"][0]
    assert Prediction.objects.count() == 3


@pytest.mark.django_db
def test_page_and_api_share_one_count(three_per_minute, client, anonymous_client):
    assert api_upload(anonymous_client) == 201
    assert api_upload(anonymous_client) == 201
    assert page_upload(client).status_code == 302
    assert page_upload(client).status_code == 429
    assert api_upload(anonymous_client) == 429


@pytest.mark.django_db
def test_logged_in_uploads_are_not_throttled_by_the_anonymous_limit(three_per_minute, client, user):
    client.force_login(user)
    assert [page_upload(client).status_code for _ in range(5)] == [302] * 5


def _redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize(
    "cache_url",
    [
        pytest.param(None, id="database-cache"),
        pytest.param(
            "redis://127.0.0.1:6379/2",
            id="redis",
            marks=pytest.mark.skipif(not _redis_available(), reason="no Redis server on 127.0.0.1:6379"),
        ),
    ],
)
def test_two_gunicorn_workers_count_against_one_limit(tmp_path, cache_url):
    extra = {"CACHE_URL": cache_url} if cache_url else {}
    with running_gunicorn(
        tmp_path, workers=2, threads=2, migrate=True, API_ANON_THROTTLE_RATE="6/minute", **extra
    ) as server:
        if cache_url:
            server.manage("shell", "-c", "from django.core.cache import cache; cache.clear()")
        server.wait_for_log("loaded model", count=2)
        wait_until_live(server)
        # Each request on its own connection, so both workers take their share.
        statuses = [
            post_image(f"{server.url}/api/predictions/", "g.png", make_image_bytes()) for _ in range(14)
        ]
        served_by = server.log.read_text()
    # With a per-process cache, two workers allowed up to twice the rate.
    assert statuses.count(201) == 6, (statuses, served_by[-2000:])
    assert statuses.count(429) == 8
