"""POST /api/predictions/: anyone may classify (unless ALLOW_ANONYMOUS_PREDICT is off)."""

import hashlib
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from django.db.models import QuerySet
from django.urls import reverse
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.throttling import AnonRateThrottle

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.models import Prediction
from classifier.tests.utils import make_image_bytes, media_files

pytestmark = pytest.mark.django_db

URL = reverse("api:prediction-list")
RESPONSE_KEYS = {
    "id",
    "filename",
    "prediction",
    "class_index",
    "confidence",
    "probabilities",
    "model_version",
    "inference_ms",
    "created_at",
    "image_url",
    "in_distribution",
    "ood_score",
    "single_band",
    "warnings",
    "ra",
    "dec",
    "cutout_url",
    "viewer_url",
    "galaxy_zoo",
}


def upload(name="galaxy.png", content=None, content_type="image/png"):
    return SimpleUploadedFile(name, make_image_bytes() if content is None else content, content_type)


def post(client, files, field="image", **extra):
    return client.post(URL, {field: files}, format="multipart", **extra)


def assert_nothing_saved(media_root):
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_anonymous_upload_is_classified_and_recorded(anonymous_client, media_root):
    content = make_image_bytes(fmt="JPEG", size=(120, 90))
    response = post(anonymous_client, [upload("m31.jpg", content, "image/jpeg")])

    assert response.status_code == 201, response.content
    [item] = response.json()["predictions"]
    assert set(item) == RESPONSE_KEYS
    assert item["filename"] == "m31.jpg"
    assert item["prediction"] == CLASS_NAMES[item["class_index"]]
    assert list(item["probabilities"]) == list(CLASS_NAMES)
    assert sum(item["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)  # ten values to 4 decimals
    assert item["confidence"] == pytest.approx(max(item["probabilities"].values()))

    record = Prediction.objects.get(pk=item["id"])
    sha = hashlib.sha256(content).hexdigest()
    assert record.sha256 == sha
    assert record.image.name == f"predictions/{sha[:2]}/{sha}.jpg"
    assert (media_root / record.image.name).read_bytes() == content
    assert (record.width, record.height) == (120, 90)
    assert record.source == Prediction.Source.API
    assert record.user is None
    assert record.client_ip == "127.0.0.1"
    assert item["image_url"].endswith(f"/media/{record.image.name}")


def test_several_images_in_one_request(anonymous_client):
    files = [upload(f"g{i}.png", make_image_bytes(color=(i * 40, 10, 10))) for i in range(3)]
    response = post(anonymous_client, files)

    assert response.status_code == 201
    names = [p["filename"] for p in response.json()["predictions"]]
    assert names == ["g0.png", "g1.png", "g2.png"]
    assert Prediction.objects.count() == 3


def test_logged_in_user_is_recorded(user_client, user):
    response = post(user_client, [upload()])
    assert response.status_code == 201
    assert Prediction.objects.get().user == user


def test_token_authentication_records_the_user(user):
    from rest_framework.test import APIClient

    token = Token.objects.create(user=user)
    client = APIClient()
    response = post(client, [upload()], HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201
    assert Prediction.objects.get().user == user


def test_anonymous_refused_when_anonymous_predict_is_off(settings, anonymous_client, user_client, media_root):
    settings.ALLOW_ANONYMOUS_PREDICT = False
    response = post(anonymous_client, [upload()])
    assert response.status_code == 401
    assert_nothing_saved(media_root)
    assert post(user_client, [upload()]).status_code == 201


def test_anonymous_callers_are_throttled(monkeypatch, anonymous_client):
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "2/minute"})
    statuses = [post(anonymous_client, [upload()]).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]


def test_empty_request_is_a_clear_400(anonymous_client, media_root):
    response = anonymous_client.post(URL, {}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert "'image'" in body["detail"]
    assert body["errors"][0]["error"] == "no image was uploaded"
    assert_nothing_saved(media_root)


def test_wrong_field_name_is_named_in_the_400(anonymous_client, media_root):
    response = post(anonymous_client, [upload()], field="file")
    assert response.status_code == 400
    assert "file" in response.json()["detail"]
    assert "'image'" in response.json()["detail"]
    assert_nothing_saved(media_root)


def truncated_png():
    return make_image_bytes(size=(200, 200), color=(1, 2, 3))[:-60]


BAD_FILES = {
    "empty.png": b"",
    "truncated.png": None,  # filled in by the test (needs Pillow at runtime)
    "random.jpg": bytes(range(256)) * 8,
    "notes.txt": b"just some text, not an image\n",
    "doc.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
    "page.html": b"<html><body><script>alert(1)</script></body></html>",
    "evil.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
}


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
def test_unusable_file_is_refused_and_nothing_saved(anonymous_client, media_root, filename):
    content = BAD_FILES[filename] if filename != "truncated.png" else truncated_png()
    response = post(anonymous_client, [upload(filename, content)])
    assert response.status_code == 400, response.content
    body = response.json()
    assert [e["filename"] for e in body["errors"]] == [filename]
    assert body["errors"][0]["error"]
    assert_nothing_saved(media_root)


def test_one_bad_file_refuses_the_whole_batch(anonymous_client, media_root):
    files = [upload("good1.png"), upload("bad.jpg", b"\xff\xd8\xff garbage"), upload("good2.png")]
    response = post(anonymous_client, files)
    assert response.status_code == 400
    assert [e["filename"] for e in response.json()["errors"]] == ["bad.jpg"]
    assert_nothing_saved(media_root)


def test_file_over_the_size_limit_is_413(settings, anonymous_client, media_root):
    settings.MAX_UPLOAD_BYTES = 2_000
    big = make_image_bytes(fmt="BMP", size=(100, 100))
    assert len(big) > 2_000
    response = post(anonymous_client, [upload("big.bmp", big, "image/bmp")])
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["errors"][0]["error"]
    assert_nothing_saved(media_root)


def test_too_many_files_is_refused(settings, anonymous_client, media_root):
    settings.MAX_FILES_PER_REQUEST = 2
    response = post(anonymous_client, [upload(f"g{i}.png") for i in range(3)])
    assert response.status_code == 400
    assert "at most 2" in response.json()["errors"][0]["error"]
    assert_nothing_saved(media_root)


def test_pixel_limit_is_a_setting(settings, anonymous_client, media_root):
    settings.MAX_IMAGE_PIXELS = 10_000
    response = post(anonymous_client, [upload("wide.png", make_image_bytes(size=(200, 100)))])
    assert response.status_code == 400
    assert "pixels" in response.json()["errors"][0]["error"]
    assert_nothing_saved(media_root)


def test_decompression_bomb_is_refused_without_decoding(anonymous_client, media_root):
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG", optimize=True)
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000  # 400 megapixels in a tiny file
    response = post(anonymous_client, [upload("bomb.png", bomb)])
    assert response.status_code == 400
    assert "pixels" in response.json()["errors"][0]["error"]
    assert_nothing_saved(media_root)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\Users\\me\\galaxy.png", "galaxy.png"),
        ("nul\x00byte.png", "nulbyte.png"),
        ("<script>alert(1)</script>.png", "<script>alert(1)<\u2215script>.png"),
        ("Galáxia ☄.png", "Galáxia ☄.png"),
        ("a" * 1000 + ".png", "a" * 251 + ".png"),
    ],
)
def test_filenames_are_stored_sanitised(anonymous_client, sent, stored):
    if "\u2215" in stored:
        stored = "script>.png"  # the slash splits the name: only the basename survives
    response = post(anonymous_client, [upload(sent)])
    assert response.status_code == 201, response.content
    record = Prediction.objects.get()
    assert record.original_filename == stored
    assert response.json()["predictions"][0]["filename"] == stored
    assert len(record.original_filename) <= 255


def test_identical_uploads_share_one_stored_file(anonymous_client, media_root):
    content = make_image_bytes()
    response = post(anonymous_client, [upload("a.png", content), upload("b.png", content)])
    assert response.status_code == 201
    first, second = Prediction.objects.order_by("id")
    assert first.image.name == second.image.name
    assert len(media_files(media_root)) == 1


def test_missing_model_is_503_and_nothing_saved(model_copy, anonymous_client, media_root):
    model_path, _ = model_copy
    model_path.unlink()
    response = post(anonymous_client, [upload()])
    assert response.status_code == 503
    assert "does not exist" in response.json()["reason"]
    assert_nothing_saved(media_root)


def test_unwritable_media_is_503_and_no_row(settings, anonymous_client, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = blocker / "media"
    response = post(anonymous_client, [upload()])
    assert response.status_code == 503
    assert "media storage" in response.json()["reason"]
    assert Prediction.objects.count() == 0


def test_database_failure_mid_batch_removes_written_files(monkeypatch, anonymous_client, media_root):
    # The INSERT fails after both files were written: both files must go again.
    files_at_insert = []

    def failing_bulk_create(self, objs, *args, **kwargs):
        files_at_insert.append(len(media_files(media_root)))
        raise DatabaseError("simulated failure")

    monkeypatch.setattr(QuerySet, "bulk_create", failing_bulk_create)
    files = [
        upload("a.png", make_image_bytes(color=(1, 1, 1))),
        upload("b.png", make_image_bytes(color=(2, 2, 2))),
    ]
    response = post(anonymous_client, files)

    assert files_at_insert == [2]
    assert response.status_code == 503
    assert json.loads(response.content)["detail"] == "storage is unavailable"
    assert_nothing_saved(media_root)
