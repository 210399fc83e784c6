"""The browsable API (HTML for a browser): proper page names, and an upload form with a file input."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import get_resolver, reverse
from rest_framework.views import APIView

from classifier.models import Prediction
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db

URL = reverse("api:prediction-list")


def api_views():
    resolver = get_resolver().url_patterns
    [api] = [pattern for pattern in resolver if getattr(pattern, "namespace", None) == "api"]
    return list(_view_classes(api.url_patterns))


def _view_classes(patterns):
    # The jobs routes come in through an include (classifier/jobs/api_urls.py).
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _view_classes(pattern.url_patterns)
        else:
            yield pattern.callback.view_class


@pytest.mark.parametrize("view_class", api_views(), ids=lambda view: view.__name__)
def test_every_api_view_has_a_name_of_its_own(view_class):
    # DRF would otherwise title the page after the class: "Prediction List Create Api".
    name = str(view_class().get_view_name())
    assert issubclass(view_class, APIView)
    assert not name.endswith("Api")
    assert name.replace(" ", "") != view_class.__name__.removesuffix("Api")


@pytest.fixture
def browser(user):
    client = Client(HTTP_ACCEPT="text/html")
    client.force_login(user)
    return client


def test_the_predictions_page_is_titled_predictions(browser):
    html = browser.get(URL).content.decode()
    [title] = re.findall(r"<title>(.*?)</title>", html, re.S)
    assert title.strip().startswith("Predictions")
    assert "List Create" not in html


def test_the_post_form_offers_an_image_file_input(browser):
    html = browser.get(URL).content.decode()
    forms = re.findall(r'<form[^>]*enctype="multipart/form-data"[^>]*>.*?</form>', html, re.S)
    assert any(re.search(r'<input[^>]*name="image"[^>]*type="file"', form) for form in forms)


def test_the_form_post_classifies_the_file(browser, media_root):
    # What the browsable form sends: one file in the `image` field, with the session's CSRF.
    response = browser.post(
        URL, {"image": SimpleUploadedFile("galaxy.png", make_image_bytes(), content_type="image/png")}
    )
    assert response.status_code == 201
    assert list(Prediction.objects.values_list("original_filename", flat=True)) == ["galaxy.png"]
