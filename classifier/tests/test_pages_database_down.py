"""The pages while the database is unreachable: the "unavailable" page with 503, never a 500.

Requests go through Django's real WSGI handler with CSRF enforced, as a browser's
would: the form's token and cookie come from the upload page fetched beforehand.
"""

import re
from http.cookies import SimpleCookie

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.test_reliability_database import call, database_unreachable
from classifier.tests.utils import make_image_bytes, media_files

pytestmark = pytest.mark.django_db(transaction=True)

UPLOAD_URL = reverse("classifier:upload")
HISTORY_URL = reverse("classifier:history")


def cookies_from(headers) -> dict[str, str]:
    return {name: morsel.value for name, morsel in SimpleCookie(headers.get("Set-Cookie", "")).items()}


def csrf_from_upload_page(cookies: dict[str, str]) -> tuple[dict[str, str], str]:
    """The CSRF cookie and form token a browser gets from the upload page."""
    status, headers, body = call(RequestFactory().get(UPLOAD_URL, HTTP_COOKIE=cookie_header(cookies)))
    assert status == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    return {**cookies, **cookies_from(headers)}, token


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def assert_unavailable_page(status, headers, body):
    assert status == 503, body[:500]
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Retry-After"] == "30"
    html = body.decode()
    assert "Traceback" not in html
    assert "<h1>The classifier is temporarily unavailable</h1>" in html
    return html


def test_upload_while_the_database_is_down_is_503_and_saves_nothing(tmp_path, media_root):
    cookies, token = csrf_from_upload_page({})
    image = make_image_bytes(fmt="JPEG", size=(64, 64), color=(120, 90, 40))

    def post_upload():
        upload = {
            "images": SimpleUploadedFile("galaxy.jpg", image, content_type="image/jpeg"),
            "csrfmiddlewaretoken": token,
        }
        return call(RequestFactory().post(UPLOAD_URL, upload, HTTP_COOKIE=cookie_header(cookies)))

    with database_unreachable(tmp_path):
        html = assert_unavailable_page(*post_upload())
        assert "Nothing was saved." in html
        assert media_files(media_root) == []

    assert Prediction.objects.count() == 0
    status, _headers, _body = post_upload()
    assert status == 302, "the same form goes through once the database is back"
    assert Prediction.objects.count() == 1


def test_history_while_the_database_is_down_is_503_and_keeps_the_login(tmp_path, client, user):
    PredictionFactory(original_filename="kept.jpg")
    client.force_login(user)
    session = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
    cookies, _token = csrf_from_upload_page(session)

    def get_history():
        return call(RequestFactory().get(HISTORY_URL, HTTP_COOKIE=cookie_header(cookies)))

    assert get_history()[0] == 200

    with database_unreachable(tmp_path):
        status, headers, body = get_history()
        html = assert_unavailable_page(status, headers, body)
        assert "The prediction history cannot be read right now." in html
        assert "the database is unavailable" in html
        # An outage must not log the reader out by deleting the session cookie.
        assert f"{settings.SESSION_COOKIE_NAME}=" not in headers.get("Set-Cookie", "")

    status, _headers, body = get_history()
    assert status == 200
    assert "kept.jpg" in body.decode()
