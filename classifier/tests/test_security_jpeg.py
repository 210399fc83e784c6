"""JPEGs are under the decode budget whatever their encoding (issue 21, item 3).

A progressive JPEG is decoded into a full-size coefficient buffer that Pillow's draft mode
does not shrink, and every scan is a pass over it. The attack files are built here with
Pillow: a progressive JPEG whose last scan is repeated thousands of times (each copy is a
valid scan that libjpeg decodes again), and a flat 40-megapixel progressive JPEG of about
680 kB. Both are refused with a 400 before libjpeg sees them, and nothing is written; the
galaxy JPEGs that people send, baseline and progressive, are still classified.

- visitor: anonymous, uploads through the API and the page.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from classifier.core import jpeg
from classifier.models import Prediction
from classifier.tests.test_decode_memory import MAX_DECODE_BYTES, SLACK_BYTES, galaxy_like, measure
from classifier.tests.utils import media_files

API_URL = reverse("api:prediction-list")
PAGE_URL = reverse("classifier:upload")
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def progressive_jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", progressive=True, **options)
    return buffer.getvalue()


def scan_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each SOS segment with its entropy-coded data, in a file Pillow wrote
    (whose other segments hold no 0xFFDA)."""
    spans, pos = [], 0
    while (start := data.find(b"\xff\xda", pos)) >= 0:
        header_end = start + 2 + int.from_bytes(data[start + 2 : start + 4], "big")
        pos = _NEXT_MARKER.search(data, header_end).start()
        spans.append((start, pos))
    return spans


def with_repeated_last_scan(data: bytes, copies: int) -> bytes:
    """The file with its last scan sent ``copies`` more times before EOI. libjpeg warns
    about the repeated progression and decodes every copy: a pass over the whole image each."""
    start, end = scan_spans(data)[-1]
    return data[:end] + data[start:end] * copies + data[end:]


def many_scans_jpeg(copies: int, side: int = 1000) -> bytes:
    # Small enough that its coefficient buffer is within the decode limit: only the scans count.
    flat = progressive_jpeg(Image.new("RGB", (side, side), (20, 20, 30)), quality=5)
    return with_repeated_last_scan(flat, copies)


def flat_40_megapixel_progressive() -> bytes:
    # 7300x5470 with no chroma subsampling: 240 MB of coefficients from a few hundred kB.
    return progressive_jpeg(Image.new("RGB", (7300, 5470), (20, 20, 30)), quality=1, subsampling=0)


def upload(client, name: str, data: bytes):
    return client.post(API_URL, {"image": [SimpleUploadedFile(name, data, "image/jpeg")]}, format="multipart")


def test_a_repeated_scan_is_a_real_scan_that_libjpeg_decodes():
    # The attack file is a valid JPEG: Pillow decodes it, and its scans are counted.
    data = many_scans_jpeg(300, side=64)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    assert jpeg.inspect(data, max_scans=10_000, max_segments=10_000).scans == len(scan_spans(data)) == 310


@pytest.mark.django_db
def test_thousands_of_scans_are_refused_before_decoding(anonymous_client, media_root):
    data = many_scans_jpeg(20_000)
    assert len(data) < 2_000_000
    # Its pixels alone would pass: 1000x1000 decodes within the limit.
    layout = jpeg.inspect(data, max_scans=100_000, max_segments=100_000)
    assert layout.scans == 20_010
    assert layout.coefficient_bytes() < MAX_DECODE_BYTES

    response = upload(anonymous_client, "scans.jpg", data)

    assert response.status_code == 400
    assert "more than 64 scans" in response.json()["errors"][0]["error"]
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


@pytest.mark.django_db
def test_the_upload_page_refuses_it_too(client, media_root):
    data = many_scans_jpeg(5_000)
    response = client.post(
        PAGE_URL,
        {"images": [SimpleUploadedFile("scans.jpg", data, "image/jpeg")]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert "scans" in response.json()["errors"][0]["error"]
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


@pytest.mark.django_db
def test_a_flat_40_megapixel_progressive_jpeg_is_refused_by_its_coefficients(anonymous_client, media_root):
    data = flat_40_megapixel_progressive()
    assert len(data) < 1_000_000
    layout = jpeg.inspect(data)
    assert (layout.width, layout.height, layout.progressive) == (7300, 5470, True)
    # Within the pixel cap (40 million), so only the decode budget stands in its way.
    assert layout.width * layout.height <= 40_000_000
    assert layout.coefficient_bytes() > 230_000_000

    response = upload(anonymous_client, "flat.jpg", data)

    assert response.status_code == 400
    error = response.json()["errors"][0]["error"]
    assert "progressive or multi-scan JPEG of 7300x5470 pixels" in error
    assert "would need 242 MB" in error
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


@pytest.mark.django_db
def test_the_same_picture_as_a_baseline_jpeg_is_still_classified(anonymous_client):
    # A single scan decodes at the draft scale: the pixel cap is its limit, as before.
    buffer = io.BytesIO()
    Image.new("RGB", (7300, 5470), (20, 20, 30)).save(buffer, "JPEG", quality=5)
    layout = jpeg.inspect(buffer.getvalue())
    assert not layout.buffered
    assert layout.coefficient_bytes() == 0
    assert upload(anonymous_client, "flat.jpg", buffer.getvalue()).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("progressive", [False, True])
def test_galaxy_jpegs_baseline_and_progressive_are_classified(anonymous_client, galaxy_images, progressive):
    for path in galaxy_images[:3]:
        data = path.read_bytes()
        if progressive:
            with Image.open(path) as image:
                data = progressive_jpeg(image, quality=90)
            assert jpeg.inspect(data).scans == 10
        response = upload(anonymous_client, path.name, data)
        assert response.status_code == 201, response.json()
    assert Prediction.objects.count() == 3


@pytest.mark.django_db
def test_a_large_progressive_galaxy_within_the_budget_is_classified(anonymous_client):
    # 1500x1500 with 4:2:0 chroma: 6.75 MB of coefficients plus the draft, under 10 MB.
    data = progressive_jpeg(galaxy_like("RGB", 1500, 1500), quality=85)
    assert jpeg.inspect(data).coefficient_bytes() < MAX_DECODE_BYTES
    assert upload(anonymous_client, "big.jpg", data).status_code == 201


@pytest.mark.django_db
def test_fill_bytes_and_restart_markers_are_walked_like_libjpeg_does(anonymous_client):
    image = Image.fromarray((np.random.default_rng(0).random((300, 300, 3)) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", progressive=True, restart_marker_blocks=4, quality=90)
    data = buffer.getvalue()
    start, _end = scan_spans(data)[1]
    padded = data[:start] + b"\xff" * 5000 + data[start:]  # fill bytes before a marker are allowed
    layout = jpeg.inspect(padded)
    assert layout.scans == 10
    assert upload(anonymous_client, "padded.jpg", padded).status_code == 201


@pytest.mark.django_db
def test_a_file_of_tiny_segments_is_refused_without_walking_them_all(anonymous_client, media_root):
    data = progressive_jpeg(Image.new("RGB", (64, 64)))
    comments = b"\xff\xfe\x00\x02" * 200_000  # empty COM segments, 800 kB of them
    response = upload(anonymous_client, "com.jpg", data[:2] + comments + data[2:])
    assert response.status_code == 400
    assert "marker segments" in response.json()["errors"][0]["error"]
    assert media_files(media_root) == []


@pytest.mark.django_db
def test_a_scan_before_any_frame_header_is_not_a_jpeg(anonymous_client):
    data = progressive_jpeg(Image.new("RGB", (64, 64)))
    start, end = scan_spans(data)[0]
    response = upload(anonymous_client, "noframe.jpg", data[:2] + data[start:end] + b"\xff\xd9")
    assert response.status_code == 400
    assert "not a recognised image format" in response.json()["errors"][0]["error"]


@pytest.mark.slow
def test_the_refusals_cost_no_decoding_memory_and_an_accepted_progressive_stays_in_budget(tmp_path):
    files = {
        "flat-40mp-progressive.jpg": flat_40_megapixel_progressive(),
        "many-scans.jpg": many_scans_jpeg(20_000),
        "big-progressive.jpg": progressive_jpeg(galaxy_like("RGB", 1500, 1500), quality=85),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    results = {r["path"].rsplit("/", 1)[-1]: r for r in measure(paths)}
    assert results["flat-40mp-progressive.jpg"]["outcome"].startswith("refused: the image is a progressive")
    assert results["flat-40mp-progressive.jpg"]["peak_growth"] <= SLACK_BYTES, results
    assert results["many-scans.jpg"]["outcome"] == "refused: the JPEG image has more than 64 scans"
    assert results["many-scans.jpg"]["peak_growth"] <= SLACK_BYTES, results
    # The accepted one is decoded within what its reservation said.
    assert results["big-progressive.jpg"]["outcome"] == "accepted"
    assert results["big-progressive.jpg"]["peak_growth"] <= MAX_DECODE_BYTES + SLACK_BYTES, results
