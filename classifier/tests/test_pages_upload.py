"""The upload page ("/"): one image -> its detail page, several -> the results grid.

Anyone may classify (unless ALLOW_ANONYMOUS_PREDICT is off); a refused batch
saves nothing and names the error beside each refused file.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http.multipartparser import MultiPartParser
from django.urls import reverse

from classifier.models import Prediction
from classifier.predictions.ownership import OWN_PREDICTIONS_SESSION_KEY
from classifier.tests.utils import make_image_bytes, media_files

pytestmark = pytest.mark.django_db

UPLOAD_URL = reverse("classifier:upload")


def png(name: str, **kwargs) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, make_image_bytes(**kwargs), content_type="image/png")


def test_get_shows_accessible_form_with_csrf(client):
    response = client.get(UPLOAD_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="images"' in html
    assert "multiple" in html
    assert '<label class="dropzone" id="dropzone" for="id_images">' in html
    assert 'class="skip-link" href="#main"' in html


def test_anonymous_upload_of_one_image_redirects_to_its_result(client, media_root):
    response = client.post(UPLOAD_URL, {"images": png("spiral.png", color=(200, 180, 90))})

    prediction = Prediction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == prediction.get_absolute_url()
    assert prediction.source == Prediction.Source.WEB
    assert prediction.client_ip == "127.0.0.1"
    assert prediction.user is None
    assert prediction.original_filename == "spiral.png"
    assert len(media_files(media_root)) == 1
    assert client.session[OWN_PREDICTIONS_SESSION_KEY] == [prediction.pk]


def test_anonymous_uploader_sees_own_result_and_image(client):
    client.post(UPLOAD_URL, {"images": png("mine.png")})
    prediction = Prediction.objects.get()

    detail = client.get(prediction.get_absolute_url())
    image = client.get(prediction.image.url)

    assert detail.status_code == 200
    assert "mine.png" in detail.content.decode()
    assert image.status_code == 200


def test_logged_in_upload_records_the_user(client, user):
    client.force_login(user)

    client.post(UPLOAD_URL, {"images": png("a.png")})

    assert Prediction.objects.get().user == user


def test_several_images_redirect_to_the_results_grid(client):
    files = [png(f"g{i}.png", color=(40 * i, 90, 160)) for i in range(3)]

    response = client.post(UPLOAD_URL, {"images": files})

    ids = list(Prediction.objects.order_by("id").values_list("id", flat=True))
    assert len(ids) == 3
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('classifier:results')}?ids={'%2C'.join(map(str, ids))}"
    grid = client.get(response["Location"])
    assert grid.status_code == 200
    html = grid.content.decode()
    for i in range(3):
        assert f"g{i}.png" in html
    assert html.count('class="grid-card') == 3


def test_upload_with_real_galaxy_image_names_its_class(client, galaxy_images):
    source = galaxy_images[0]
    upload = SimpleUploadedFile(source.name, source.read_bytes(), content_type="image/jpeg")

    response = client.post(UPLOAD_URL, {"images": upload}, follow=True)

    prediction = Prediction.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert prediction.class_name in html
    assert 'id="probabilities"' in html
    assert html.count('<th scope="row">') >= 10


def test_batch_with_one_bad_file_is_refused_whole_with_error_next_to_it(client, media_root):
    good = png("good.png")
    bad = SimpleUploadedFile("notes.jpg", b"this is not an image at all", content_type="image/jpeg")

    response = client.post(UPLOAD_URL, {"images": [good, bad]})

    assert response.status_code == 400
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []
    html = response.content.decode()
    assert '<span class="file-name">notes.jpg</span>: <span class="file-error">' in html
    assert "nothing was saved" in html


def test_refused_batch_answers_json_for_the_upload_script(client):
    bad = SimpleUploadedFile("empty.png", b"", content_type="image/png")

    response = client.post(UPLOAD_URL, {"images": [png("ok.png"), bad]}, HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    body = response.json()
    assert [error["filename"] for error in body["errors"]] == ["empty.png"]
    assert Prediction.objects.count() == 0


def test_successful_upload_answers_json_redirect_for_the_upload_script(client):
    response = client.post(UPLOAD_URL, {"images": png("ok.png")}, HTTP_ACCEPT="application/json")

    prediction = Prediction.objects.get()
    assert response.status_code == 200
    assert response.json() == {"redirect": prediction.get_absolute_url(), "ids": [prediction.pk]}


def test_post_without_files_is_400_and_writes_nothing(client):
    response = client.post(UPLOAD_URL, {})

    assert response.status_code == 400
    assert "Choose at least one image" in response.content.decode()
    assert Prediction.objects.count() == 0


def test_too_many_files_is_400(client, settings):
    settings.MAX_FILES_PER_REQUEST = 2
    files = [png(f"{i}.png") for i in range(3)]

    response = client.post(UPLOAD_URL, {"images": files})

    assert response.status_code == 400
    assert "at most 2" in response.content.decode()
    assert Prediction.objects.count() == 0


def test_oversized_file_is_413(client, settings):
    settings.MAX_UPLOAD_BYTES = 100

    response = client.post(UPLOAD_URL, {"images": png("big.png", size=(300, 300), mode="RGB")})

    assert response.status_code == 413
    assert "big.png" in response.content.decode()
    assert Prediction.objects.count() == 0


def test_filename_with_markup_is_shown_escaped(client):
    bad = SimpleUploadedFile('<img src=x onerror="alert(1)">.jpg', b"nope", content_type="image/jpeg")

    response = client.post(UPLOAD_URL, {"images": bad})

    html = response.content.decode()
    assert response.status_code == 400
    assert '<img src=x onerror="alert(1)">' not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.jpg" in html


def test_missing_model_gives_a_clear_503_and_writes_nothing(client, settings, tmp_path):
    settings.MODEL_PATH = tmp_path / "absent.tflite"
    settings.MODEL_MANIFEST = tmp_path / "absent.json"

    response = client.post(UPLOAD_URL, {"images": png("a.png")})

    assert response.status_code == 503
    assert "temporarily unavailable" in response.content.decode()
    assert "Nothing was saved" in response.content.decode()
    assert Prediction.objects.count() == 0


def test_anonymous_upload_can_be_switched_off(client, settings):
    settings.ALLOW_ANONYMOUS_PREDICT = False

    response = client.get(UPLOAD_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.fixture
def body_parsing_fails(monkeypatch):
    """Proves a refused request was never parsed: reading its body is an error."""

    def parse(self):
        raise AssertionError("an oversized body was parsed")

    monkeypatch.setattr(MultiPartParser, "parse", parse)


def oversized_batch() -> list[SimpleUploadedFile]:
    # 100x100 BMPs are 30 KB each, so three of them are well over a 20,000-byte cap.
    return [
        SimpleUploadedFile(
            f"big{i}.bmp", make_image_bytes(fmt="BMP", size=(100, 100)), content_type="image/bmp"
        )
        for i in range(3)
    ]


def test_oversized_request_gets_the_413_page_and_writes_nothing(
    client, settings, media_root, user, monkeypatch
):
    client.force_login(user)
    client.post(UPLOAD_URL, {"images": png("earlier.png")})
    files_before = media_files(media_root)
    assert len(files_before) == 1
    settings.MAX_REQUEST_BYTES = 20_000
    monkeypatch.setattr(MultiPartParser, "parse", lambda self: pytest.fail("an oversized body was parsed"))

    response = client.post(UPLOAD_URL, {"images": oversized_batch()})

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<h1>The upload was too large</h1>" in html
    assert "more than the limit of 19.5\N{NO-BREAK SPACE}KB for one upload" in html
    assert "Nothing was saved." in html
    assert f'<a class="button" href="{UPLOAD_URL}">Back to the upload page</a>' in html
    # The page is rendered with the session, so the reader still sees who is logged in.
    assert "Log out (reader)" in html
    assert Prediction.objects.count() == 1
    assert media_files(media_root) == files_before


def test_oversized_request_answers_json_for_the_upload_script(
    client, settings, media_root, body_parsing_fails
):
    settings.MAX_REQUEST_BYTES = 20_000

    response = client.post(UPLOAD_URL, {"images": oversized_batch()}, HTTP_ACCEPT="application/json")

    assert response.status_code == 413
    message = "The upload is too large (more than 19.5\N{NO-BREAK SPACE}KB in all), so nothing was saved."
    # The page's error shape: the API's detail, with the per-file and whole-request lists.
    assert response.json() == {"detail": message, "errors": [], "request_errors": [message]}
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_413_page_is_in_the_readers_language(client, settings, body_parsing_fails):
    settings.MAX_REQUEST_BYTES = 20_000

    response = client.post(UPLOAD_URL, {"images": oversized_batch()}, HTTP_ACCEPT_LANGUAGE="es")

    assert response.status_code == 413
    html = response.content.decode()
    assert '<html lang="es">' in html
    assert "<h1>La subida era demasiado grande</h1>" in html
    assert "No se ha guardado nada." in html


def test_upload_form_tells_the_script_the_per_file_limit(client, settings):
    settings.MAX_UPLOAD_BYTES = 123_456

    html = client.get(UPLOAD_URL).content.decode()

    assert 'data-max-upload-bytes="123456"' in html
