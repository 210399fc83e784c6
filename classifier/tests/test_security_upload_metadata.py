"""Uploaded photos are served without their GPS position, owner, XMP, IPTC or comments,
through the API and the upload page; the audit keeps the hash of the original bytes
(issue 14, item 8).

- reader: logged in; uploads through the API and reads the stored image back;
- visitor: anonymous; uploads through the page and sees their own image.
"""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import PngImagePlugin

from classifier.models import Prediction
from classifier.tests.test_metadata import (
    COMMENT,
    LEAKS,
    OWNER,
    PHOTOSHOP,
    XMP,
    camera_exif,
    frames,
    gif_with_xmp,
    metadata_left,
    orientation,
    picture,
    save,
    tiff_metadata,
    with_jpeg_segment,
)
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db

API_URL = reverse("api:prediction-list")
UPLOAD_URL = reverse("classifier:upload")


def phone_jpeg() -> bytes:
    data = save(picture(), "JPEG", exif=camera_exif(6), comment=COMMENT.encode(), xmp=XMP, quality=92)
    return with_jpeg_segment(data, 0xED, b"Photoshop 3.0\0" + PHOTOSHOP)


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", OWNER)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return save(picture(), "PNG", pnginfo=info, exif=camera_exif(6))


# Each: a file as a phone or an editor writes it, its content type, and the orientation it keeps.
UPLOADS = {
    "photo.jpg": (phone_jpeg, "image/jpeg", 6),
    "scan.png": (png_with_text, "image/png", 6),
    "shot.webp": (
        lambda: save(picture(), "WEBP", exif=camera_exif(8), xmp=XMP, lossless=True),
        "image/webp",
        8,
    ),
    "loop.gif": (lambda: gif_with_xmp(save(picture("P"), "GIF", comment=COMMENT)), "image/gif", None),
    "plate.tif": (
        lambda: save(picture(), "TIFF", compression="tiff_lzw", tiffinfo=tiff_metadata(3)),
        "image/tiff",
        3,
    ),
}


def served(client, prediction: Prediction) -> bytes:
    response = client.get(prediction.image.url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def assert_served_clean(body: bytes, original: bytes, expected_orientation: int | None) -> None:
    for leak in LEAKS:
        assert leak not in body, leak
    assert metadata_left(body) == {}
    assert frames(body) == frames(original)
    assert orientation(body) == expected_orientation


@pytest.mark.parametrize("name", UPLOADS)
def test_api_upload_is_served_without_metadata(user_client, client, user, media_root, name):
    make, content_type, expected_orientation = UPLOADS[name]
    original = make()
    assert any(leak in original for leak in LEAKS)

    response = user_client.post(
        API_URL, {"image": [SimpleUploadedFile(name, original, content_type)]}, format="multipart"
    )

    assert response.status_code == 201, response.content
    prediction = Prediction.objects.get()
    # The audit keeps the hash of what was uploaded, not of the stored copy.
    assert prediction.sha256 == hashlib.sha256(original).hexdigest()
    [stored] = media_files(media_root)
    assert stored.read_bytes() != original
    client.force_login(user)  # the media view uses the session, as a browser does
    assert_served_clean(served(client, prediction), original, expected_orientation)


@pytest.mark.parametrize("name", UPLOADS)
def test_page_upload_is_served_without_metadata(client, name):
    make, content_type, expected_orientation = UPLOADS[name]
    original = make()

    response = client.post(UPLOAD_URL, {"images": SimpleUploadedFile(name, original, content_type)})

    assert response.status_code == 302
    prediction = Prediction.objects.get()
    assert prediction.sha256 == hashlib.sha256(original).hexdigest()
    assert_served_clean(served(client, prediction), original, expected_orientation)


def test_the_same_original_is_stored_once(user_client, media_root):
    original = phone_jpeg()
    for name in ("first.jpg", "again.jpg"):
        response = user_client.post(
            API_URL, {"image": [SimpleUploadedFile(name, original, "image/jpeg")]}, format="multipart"
        )
        assert response.status_code == 201
    first, second = Prediction.objects.order_by("id")
    assert first.image.name == second.image.name
    assert first.image.name.endswith(f"{hashlib.sha256(original).hexdigest()}.jpg")
    assert len(media_files(media_root)) == 1


def test_an_upload_without_metadata_is_stored_byte_for_byte(user_client, media_root):
    original = save(picture(), "JPEG", quality=90)
    response = user_client.post(
        API_URL, {"image": [SimpleUploadedFile("plain.jpg", original, "image/jpeg")]}, format="multipart"
    )
    assert response.status_code == 201
    [stored] = media_files(media_root)
    assert stored.read_bytes() == original
