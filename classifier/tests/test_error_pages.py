"""The 400, 403, 404 and 500 pages: styled, in the reader's language, and JSON under /api/."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import path
from django.utils import translation

from classifier.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def boom(request):
    msg = "a bug"
    raise RuntimeError(msg)


# This module doubles as a URLconf with a view that fails, for the 500 page.
urlpatterns = [path("boom/", boom), path("api/boom/", boom)]
handler500 = "classifier.web.error_views.server_error"


def page(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize(
    ("language", "heading"),
    [("en", "This page does not exist"), ("es", "Esta página no existe")],
)
def test_an_unknown_address_gets_the_styled_404_in_the_readers_language(client, language, heading):
    response = client.get("/nonexistent/", headers={"accept-language": language})
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    body = page(response)
    assert heading in body
    assert 'class="site-header"' in body
    assert "css/site.css" in body
    assert "Not Found" not in body


def test_a_missing_prediction_gets_the_styled_404(client, user):
    client.force_login(user)
    response = client.get("/predictions/999/")
    assert response.status_code == 404
    assert "This page does not exist" in page(response)


def test_a_form_without_its_csrf_token_gets_the_styled_403():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/", {}, headers={"accept-language": "es"})
    assert response.status_code == 403
    body = page(response)
    assert "El formulario ha caducado" in body
    assert 'class="site-header"' in body


def test_permission_denied_gets_the_styled_403(rf, user):
    from classifier.web.error_views import permission_denied

    request = rf.get("/history/")
    request.user = user
    with translation.override("en"):
        response = permission_denied(request, PermissionError())
    assert response.status_code == 403
    assert "You may not do this" in page(response)


def test_a_bad_host_gets_the_styled_400(client):
    response = client.get("/", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert "The request could not be understood" in page(response)


@pytest.mark.urls("classifier.tests.test_error_pages")
@pytest.mark.parametrize(
    ("language", "heading"),
    [("en", "Something went wrong on our side"), ("es", "Algo ha fallado por nuestra parte")],
)
def test_a_failing_view_gets_the_styled_500(language, heading):
    client = Client(raise_request_exception=False)
    response = client.get("/boom/", headers={"accept-language": language})
    assert response.status_code == 500
    body = page(response)
    assert heading in body
    assert "a bug" not in body
    assert "Traceback" not in body


@pytest.mark.urls("classifier.tests.test_error_pages")
def test_a_failing_api_view_gets_json():
    client = Client(raise_request_exception=False)
    response = client.get("/api/boom/")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


@pytest.mark.parametrize("url", ["/api/predictions/abc/", "/api/nothing-here/", "/api/predictions/1/extra/"])
def test_unknown_api_addresses_are_json_404s(client, url):
    PredictionFactory()
    response = client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "not found"}


def test_the_error_templates_have_no_inline_script_or_style(settings):
    from pathlib import Path

    for name in ("400.html", "403.html", "403_csrf.html", "404.html", "500.html"):
        text = (Path(settings.BASE_DIR) / "templates" / name).read_text()
        assert "style=" not in text, name
        assert "<style" not in text, name
        assert "<script" not in text, name
