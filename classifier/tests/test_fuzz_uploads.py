"""Property-based fuzzing of POST /api/predictions/ with hypothesis.

Random bytes, real image headers followed by garbage, truncated and bit-flipped
real images, and arbitrary filenames (raw bytes in the multipart header, so the
client library cannot tidy them first). Whatever arrives: never a 5xx, a 4xx
writes nothing, and a 201 stores exactly what it reports.
"""

import io
import unicodedata

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from classifier.models import Prediction
from classifier.predictions.filenames import sanitise_filename
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db

URL = reverse("api:prediction-list")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _image(fmt, **kwargs):
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), (40, 90, 160)).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


REAL_IMAGES = [_image(fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")]
HEADERS = [
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"%PDF-1.7\n",
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script>",
    b"\x00\x00\x01\x00",  # ICO
    b"8BPS",  # PSD
    b"%!PS-Adobe-3.0 EPSF-3.0",
]


@st.composite
def truncated_image(draw):
    data = draw(st.sampled_from(REAL_IMAGES))
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def flipped_image(draw):
    data = bytearray(draw(st.sampled_from(REAL_IMAGES)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    return bytes(data)


contents = st.one_of(
    st.binary(max_size=4096),
    st.builds(lambda h, tail: h + tail, st.sampled_from(HEADERS), st.binary(max_size=2048)),
    truncated_image(),
    flipped_image(),
    st.sampled_from(REAL_IMAGES),
)
filenames = st.one_of(
    st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.builds(
        lambda prefix, name: prefix + name.encode(),
        st.sampled_from([b"../../", b"..\\..\\", b"/etc/", b"C:\\x\\", b"\x00", b"<script>"]),
        st.text(max_size=40),
    ),
    st.just(b"a" * 1000 + b".png"),
)


def multipart(parts, boundary=b"fuzzboundary7MA4YWxkTrZu0gW"):
    body = b""
    for field, filename, content in parts:
        body += b"--" + boundary + b"\r\n"
        body += b'Content-Disposition: form-data; name="' + field + b'"; filename="' + filename + b'"\r\n'
        body += b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def assert_well_behaved(response, sent_files, rows_before, files_before, media_root):
    assert response.status_code < 500, response.content[:500]
    assert response.status_code in (201, 400, 413), (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    if response.status_code != 201:
        assert Prediction.objects.count() == rows_before
        assert media_files(media_root) == files_before
        return
    items = response.json()["predictions"]
    # Django's multipart parser drops a part whose filename is empty or only path
    # components ("", "/", "..", "\\"): browsers send filename="" for an empty input.
    assert 1 <= len(items) <= sent_files
    assert Prediction.objects.count() == rows_before + len(items)
    for item in items:
        record = Prediction.objects.get(pk=item["id"])
        assert item["filename"] == record.original_filename
        assert 0 < len(record.original_filename) <= 255
        assert not {"/", "\\", "\x00"} & set(record.original_filename)
        assert (media_root / record.image.name).is_file()


@FUZZ
@given(files=st.lists(st.tuples(filenames, contents), min_size=1, max_size=3))
def test_random_uploads_never_cause_a_server_error(files, media_root):
    cache.clear()  # the anonymous throttle would otherwise answer 429 part-way through
    rows_before, files_before = Prediction.objects.count(), media_files(media_root)
    body, content_type = multipart([(b"image", name, content) for name, content in files])
    response = Client().generic("POST", URL, body, content_type=content_type)
    assert_well_behaved(response, len(files), rows_before, files_before, media_root)


@FUZZ
@given(
    field=st.binary(min_size=0, max_size=30).filter(lambda f: b'"' not in f and b"\r" not in f),
    filename=filenames,
    content=contents,
)
def test_random_field_names_and_framing(field, filename, content, media_root):
    cache.clear()
    rows_before, files_before = Prediction.objects.count(), media_files(media_root)
    body, content_type = multipart([(field, filename, content)])
    response = Client().generic("POST", URL, body, content_type=content_type)
    assert response.status_code < 500, response.content[:500]
    if field != b"image":
        assert response.status_code == 400
        assert Prediction.objects.count() == rows_before
        assert media_files(media_root) == files_before


@FUZZ
@given(
    body=st.binary(max_size=2048),
    content_type=st.sampled_from(
        [
            "multipart/form-data; boundary=x",
            "multipart/form-data",
            "application/json",
            "image/png",
            "text/plain",
        ]
    ),
)
def test_random_request_bodies(body, content_type, media_root):
    cache.clear()
    rows_before = Prediction.objects.count()
    response = Client().generic("POST", URL, body, content_type=content_type)
    assert response.status_code < 500, response.content[:500]
    assert response.status_code in (400, 415), response.content[:300]
    assert Prediction.objects.count() == rows_before
    assert media_files(media_root) == []


@pytest.mark.parametrize("name", [b"", b"/", b"..", b"../", b"\\", b"\x00"])
def test_parts_without_a_usable_filename_are_not_files(name, media_root):
    body, content_type = multipart([(b"image", name, REAL_IMAGES[0]), (b"image", b"ok.png", REAL_IMAGES[1])])
    response = Client().generic("POST", URL, body, content_type=content_type)
    assert response.status_code == 201
    assert [item["filename"] for item in response.json()["predictions"]] == ["ok.png"]
    assert Prediction.objects.count() == 1


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.text(max_size=2000), st.none()))
def test_sanitised_filenames_are_safe_to_store_and_show(raw):
    clean = sanitise_filename(raw)
    assert 0 < len(clean) <= 255
    assert not {"/", "\\"} & set(clean)
    assert all(unicodedata.category(ch)[0] != "C" for ch in clean)
    assert clean not in (".", "..")
    assert clean == clean.strip()
