"""The OpenAPI schema generates, validates, and is browsable."""

import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/predictions/",
        "/api/predictions/{id}/",
        "/api/predictions/bulk-delete/",
        "/api/model/",
    ):
        assert path in text


def test_schema_and_swagger_ui_are_served(anonymous_client):
    assert anonymous_client.get(reverse("schema")).status_code == 200
    response = anonymous_client.get(reverse("swagger-ui"))
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    # Served from our own static files, never from a CDN: the app works offline.
    assert b"cdn.jsdelivr" not in response.content
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in response.content


def test_browsable_api_renders_for_a_user(user_client):
    response = user_client.get(reverse("api:prediction-list"), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<title>Predictions" in response.content
