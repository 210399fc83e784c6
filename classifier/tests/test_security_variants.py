"""Variants of issue 21's attacks tried against its fixes (round 3 review).

Each test sends a crafted file or request through the real code path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from classifier.core import fits_header
from classifier.models import Prediction
from classifier.tests.test_security_fits import header

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
SIDE = 32


def wcs_fits(*extra: tuple[str, object]) -> bytes:
    """A 32x32 single-band image whose header carries a good TAN WCS centred on (150, 2)
    and the extra cards, written card by card as an attacker would."""
    head = header(
        ("SIMPLE", True),
        ("BITPIX", -32),
        ("NAXIS", 2),
        ("NAXIS1", SIDE),
        ("NAXIS2", SIDE),
        *extra,
        ("CTYPE1", "RA---TAN"),
        ("CTYPE2", "DEC--TAN"),
        ("CRVAL1", 150.0),
        ("CRVAL2", 2.0),
        ("CRPIX1", (SIDE + 1) / 2),
        ("CRPIX2", (SIDE + 1) / 2),
        ("CD1_1", -7.3e-5),
        ("CD2_2", 7.3e-5),
    )
    y, x = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    pixels = np.exp(-(x**2 + y**2) / 50.0).astype(">f4").tobytes()
    return head + pixels.ljust(-(-len(pixels) // fits_header.BLOCK) * fits_header.BLOCK, b"\0")


def upload(client, data: bytes) -> Prediction:
    image = SimpleUploadedFile("wcs.fits", data, content_type="application/fits")
    response = client.post(reverse("api:prediction-list"), {"image": [image]}, format="multipart")
    assert response.status_code == 201, response.content
    return Prediction.objects.get(pk=response.json()["predictions"][0]["id"])


# --- FITS: WCS keyword bombs given to astropy.wcs by the sky position code ---------------------


def test_a_huge_wcsaxes_does_not_reach_wcslib(anonymous_client):
    # WCSAXES = 10000 made wcslib allocate 10000-axis matrices: 22 s and 2.1 GB for a
    # 2,880-byte header, and then no position. The celestial cards of axes 1-2 are read alone.
    prediction = upload(anonymous_client, wcs_fits(("WCSAXES", 10_000)))

    assert (prediction.ra, prediction.dec) == (pytest.approx(150.0, abs=1e-4), pytest.approx(2.0, abs=1e-4))


def test_wcsaxes_of_a_hundred_thousand_does_not_crash_the_process(tmp_path):
    # It was a segmentation fault inside wcslib: the whole gunicorn or Celery worker process
    # died. Run in a child process so that a crash is a failed test, not a dead test run.
    path = tmp_path / "wcsaxes.fits"
    path.write_bytes(wcs_fits(("WCSAXES", 100_000)))
    script = (
        "import sys\n"
        "from classifier.core import fits\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "layout = fits.inspect(data, max_pixels=40_000_000)\n"
        "print(fits.sky_centre(layout))\n"
        # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(int(status.split()[0]) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    centre, peak_mb = result.stdout.split("\n")[:2]
    assert centre.startswith(("(150.0", "(149.99")), centre
    assert int(peak_mb) < 400, f"peak {peak_mb} MB"


@pytest.mark.parametrize("order", [10, 1000])
def test_a_sip_order_out_of_range_gives_no_position(anonymous_client, order):
    # astropy reads SIP coefficients in a Python loop over order squared, for each of A, B,
    # AP, BP: A_ORDER = 3000 took 29 s and 340 MB from a 2,880-byte header.
    prediction = upload(
        anonymous_client,
        wcs_fits(("A_ORDER", order), ("B_ORDER", order), ("AP_ORDER", order), ("BP_ORDER", order)),
    )

    assert (prediction.ra, prediction.dec) == (None, None)


def test_a_sip_distortion_within_range_is_still_read(anonymous_client):
    prediction = upload(
        anonymous_client,
        wcs_fits(("A_ORDER", 2), ("B_ORDER", 2), ("A_2_0", 1e-6), ("B_0_2", 1e-6)),
    )
    # CTYPE without -SIP: astropy still applies the SIP cards it is given, near the centre only
    # by a fraction of a pixel.
    assert (prediction.ra, prediction.dec) == (pytest.approx(150.0, abs=1e-3), pytest.approx(2.0, abs=1e-3))


# --- Catalogue CSV: one enormous row ---------------------------------------------------------

# Under the test settings' request limit (2.5 MB); the production limit allows 63 MB.
CATALOGUE_BYTES = 2 * 1024 * 1024


def _catalogue_attacks() -> dict[str, bytes]:
    return {
        # Before: a header of 63 MB of commas took 26 s and 1.1 GB and was accepted (the empty
        # names were not counted as columns), and each row then padded itself to its length.
        "header-of-commas": b"file" + b"," * CATALOGUE_BYTES + b"\n",
        # Before: one 63 MB row of cells became a list of 31 million strings (606 MB).
        "row-of-cells": b"file,id\na.png" + b",x" * (CATALOGUE_BYTES // 2) + b"\n",
        "quoted-cells-across-lines": b"file,id\na.png" + b',x,"\n",x' * (CATALOGUE_BYTES // 8) + b"\n",
    }


@pytest.mark.parametrize("name", list(_catalogue_attacks()))
def test_one_enormous_catalogue_row_is_refused_while_streaming(name, user_client, media_root):
    import tracemalloc

    from classifier.core.exceptions import JobInputError
    from classifier.jobs.submissions import submission_from_uploads
    from classifier.models import Job, JobMember
    from classifier.tests.jobs_support import distinct_images
    from classifier.tests.utils import media_files

    csv_bytes = _catalogue_attacks()[name]
    image = distinct_images(1)[0]
    catalogue = SimpleUploadedFile("catalogue.csv", csv_bytes)
    tracemalloc.start()
    try:
        with pytest.raises(JobInputError, match="has a row longer than") as refusal:
            submission_from_uploads(images=[SimpleUploadedFile("a.png", image)], catalogue=catalogue)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not refusal.value.too_large
    assert peak < 2 * 1024 * 1024, f"{peak:,} bytes"

    response = user_client.post(
        reverse("api:job-list"),
        {
            "image": [SimpleUploadedFile("a.png", image)],
            "catalogue": SimpleUploadedFile("catalogue.csv", csv_bytes),
        },
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert "has a row longer than 65,536 characters" in response.content.decode()
    assert (Job.objects.count(), JobMember.objects.count(), media_files(media_root)) == (0, 0, [])


def test_a_catalogue_of_positions_with_an_enormous_header_is_refused(user_client):
    from classifier.models import Job

    csv_bytes = b"ra,dec" + b"," * CATALOGUE_BYTES + b"\n10,2\n"
    response = user_client.post(
        reverse("api:job-list"),
        {"catalogue": SimpleUploadedFile("catalogue.csv", csv_bytes)},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert Job.objects.count() == 0


# --- JPEG: a segment libjpeg skips but the metadata stripper cannot rewrite -------------------


def _baseline_40_megapixels() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    # Baseline: validated at libjpeg's 1/8 draft scale, 2.5 MB; at full size 160 MB.
    Image.new("RGB", (7300, 5470), (20, 20, 30)).save(buffer, "JPEG", quality=5)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "tail",
    [b"\xff\xfe\x00\x00\xff\xd9", b"\xff\xfe\x00\x01\xff\xd9", b"\xff\xfe\xff\xff" + b"x" * 10],
    ids=["comment-of-length-0", "comment-of-length-1", "comment-past-the-end"],
)
def test_a_jpeg_the_stripper_would_re_encode_at_full_size_is_refused(anonymous_client, media_root, tail):
    # Before: accepted (201), and strip_metadata fell back to re-encoding the whole
    # 40-megapixel picture outside the decode budget: +176 MB and 0.4-0.9 s for a 626 kB file.
    from classifier.tests.utils import media_files

    data = _baseline_40_megapixels()[:-2] + tail
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("bomb.jpg", data, "image/jpeg")]},
        format="multipart",
    )

    assert response.status_code == 400, response.content
    assert "has a bad length" in response.content.decode()
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_the_same_jpeg_with_its_segments_intact_is_stored_as_sent(anonymous_client, media_root):
    from classifier.core.metadata import strip_metadata

    data = _baseline_40_megapixels()
    assert strip_metadata(data, "JPEG") == data  # rewritten, not re-encoded
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("big.jpg", data, "image/jpeg")]},
        format="multipart",
    )
    assert response.status_code == 201, response.content


# --- PNG: compressed text chunks inflated when the file is opened ----------------------------


def _png_with_text(chunks: int, inflated: int) -> bytes:
    import io
    import struct
    import zlib

    from PIL import Image

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, "PNG")
    png = buffer.getvalue()
    text = zlib.compress(b"a" * inflated, 9)
    extra = b"".join(chunk(b"zTXt", b"note%d\0\0" % index + text) for index in range(chunks))
    return png[:33] + extra + png[33:]  # after the signature and IHDR


def test_a_png_whose_text_chunks_inflate_to_megabytes_is_refused(anonymous_client, media_root):
    # 63 zTXt chunks of 1 MB each in a 67 kB file: Pillow inflated all of them (65 MB, about a
    # second) at every open, outside the decode budget, and the upload was accepted.
    from classifier.tests.utils import media_files

    data = _png_with_text(63, 1024 * 1024 - 1)
    assert len(data) < 70_000
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("text.png", data, "image/png")]},
        format="multipart",
    )

    assert response.status_code == 400, response.content
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_a_png_with_ordinary_text_chunks_is_classified(anonymous_client):
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("text.png", _png_with_text(4, 2_000), "image/png")]},
        format="multipart",
    )
    assert response.status_code == 201, response.content


# --- Positions typed on the page: each read by astropy before the login check --------------


def test_an_anonymous_list_of_thousands_of_sexagesimal_positions_is_refused_unread(client, cutout_server):
    # Before: every line went through astropy's SkyCoord (0.6-1.4 ms each) and only then was
    # the anonymous sender told to log in: 200,000 lines of "1h 2" (1 MB) held the thread for
    # about two minutes. Now the count is refused first.
    from classifier.core import positions
    from classifier.models import Job
    from classifier.web.forms import MAX_TYPED_POSITIONS

    calls = []
    original = positions.parse_sky_position

    def counting(text: str):
        calls.append(text)
        return original(text)

    lines = "\n".join(["1h 2"] * (MAX_TYPED_POSITIONS + 1))
    import classifier.web.forms as forms_module

    forms_module.parse_sky_position, saved = counting, forms_module.parse_sky_position
    try:
        response = client.post(reverse("classifier:position"), {"positions": lines})
    finally:
        forms_module.parse_sky_position = saved

    assert response.status_code == 400
    assert f"At most {MAX_TYPED_POSITIONS} positions can be classified at once" in response.content.decode()
    assert calls == []
    assert not Job.objects.exists()
    assert cutout_server.hits() == []


def test_a_logged_in_list_at_the_limit_is_still_a_job(client, user, cutout_server):
    from classifier.models import Job
    from classifier.web.forms import MAX_TYPED_POSITIONS

    client.force_login(user)
    lines = "\n".join(f"{index % 360}.5 1.25" for index in range(MAX_TYPED_POSITIONS))
    response = client.post(reverse("classifier:position"), {"positions": lines})

    assert response.status_code == 302, response.content[:500]
    assert Job.objects.get().total == MAX_TYPED_POSITIONS


# --- JPEG: lossless coding, which libjpeg-turbo 3 decodes but cannot scale -------------------


def lossless_jpeg(side: int) -> bytes:
    """A grey lossless JPEG (SOF3, predictor 1) of side x side pixels, all 128: one Huffman
    code of one bit for a difference of 0, so each pixel is one 0 bit."""
    import struct

    def segment(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload

    frame = segment(0xC3, bytes([8]) + struct.pack(">HH", side, side) + bytes([1, 1, 0x11, 0]))
    table = segment(0xC4, bytes([0x00]) + bytes([1] + [0] * 15) + bytes([0]))
    scan = segment(0xDA, bytes([1, 1, 0x00, 1, 0, 0]))
    return b"\xff\xd8" + frame + table + scan + bytes(side * side // 8) + b"\xff\xd9"


def test_a_lossless_jpeg_does_not_overflow_the_decoders_buffer(tmp_path):
    # Pillow's draft mode asked for 1/8 scale, libjpeg-turbo 3 ignored it for a lossless JPEG,
    # and full-width rows went into the scaled buffer: "double free or corruption", the
    # process aborted (a gunicorn or Celery worker killed by one 2 MB anonymous upload).
    path = tmp_path / "lossless.jpg"
    path.write_bytes(lossless_jpeg(4000))
    script = (
        "import sys, django\n"
        "django.setup()\n"
        "from classifier.predictions.inference import get_classifier\n"
        "from classifier.core.preprocessing import ImageDecodeError\n"
        "try:\n"
        "    get_classifier().prepare(open(sys.argv[1], 'rb').read())\n"
        "    print('accepted')\n"
        "except ImageDecodeError as exc:\n"
        "    print('refused:', exc)\n"
        "import gc; gc.collect()\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "galaxysite.test_settings"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "refused: the image could not be decoded: a JPEG coded with start-of-frame 0xC3" in result.stdout


@pytest.mark.parametrize("marker", [0xC3, 0xC5, 0xC7, 0xCB, 0xCF])
def test_lossless_and_hierarchical_jpegs_get_400_and_nothing_is_written(anonymous_client, media_root, marker):
    from classifier.tests.utils import media_files

    data = bytearray(lossless_jpeg(64))
    data[3] = marker  # the frame marker, right after SOI
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("lossless.jpg", bytes(data), "image/jpeg")]},
        format="multipart",
    )

    assert response.status_code == 400, response.content
    assert f"start-of-frame 0x{marker:02X}" in response.content.decode()
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_a_12_bit_jpeg_is_refused_before_decoding():
    from classifier.core import jpeg
    from classifier.core.preprocessing import ImageDecodeError

    data = bytearray(lossless_jpeg(64))
    data[3], data[6] = 0xC1, 12  # extended sequential, 12 bits a sample
    with pytest.raises(ImageDecodeError, match="at 12 bits is not supported"):
        jpeg.inspect(bytes(data))


# --- TIFF: a tile far larger than the image ---------------------------------------------------


def tiled_tiff(tile: int, *, side: int = 64) -> bytes:
    """A side x side RGB TIFF in one Deflate tile of tile x tile pixels (zeros), its IFD
    written with struct: the tile's size is declared freely, whatever the image's."""
    import struct
    import zlib

    packer = zlib.compressobj(9)
    row_block = bytes(tile * 3 * 256)
    compressed = b"".join(packer.compress(row_block) for _ in range(tile // 256)) + packer.flush()
    body = compressed + b"\0" * (len(compressed) % 2)
    tags = [
        (256, 4, 1, side),
        (257, 4, 1, side),
        (258, 3, 3, None),  # BitsPerSample 8, 8, 8, stored after the IFD
        (259, 3, 1, 8),  # Deflate
        (262, 3, 1, 2),  # RGB
        (277, 3, 1, 3),
        (284, 3, 1, 1),
        (322, 4, 1, tile),
        (323, 4, 1, tile),
        (324, 4, 1, 8),
        (325, 4, 1, len(compressed)),
    ]
    ifd_at = 8 + len(body)
    after_ifd = ifd_at + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        if value is None:
            ifd += struct.pack("<HHII", tag, kind, count, after_ifd)
        elif kind == 3:
            ifd += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8)
    return b"II*\0" + struct.pack("<I", ifd_at) + body + ifd


def test_a_small_tiff_with_a_huge_tile_is_refused_by_the_decode_budget(anonymous_client, media_root):
    # Before: the budget counted the 64x64 image (16 kB) and libtiff inflated the whole
    # declared tile: 8192x8192 took +200 MB, 16384x16384 +790 MB and 5.6 s (a 783 kB file).
    from classifier.tests.utils import media_files

    data = tiled_tiff(8192)
    assert len(data) < 300_000
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("tile.tif", data, "image/tiff")]},
        format="multipart",
    )

    assert response.status_code == 400, response.content
    assert "would need 201 MB of memory to decode" in response.content.decode()
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_a_tiff_in_ordinary_tiles_is_classified(anonymous_client):
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("tile.tif", tiled_tiff(256), "image/tiff")]},
        format="multipart",
    )
    assert response.status_code == 201, response.content


# --- Positions: a huge cutout from the service, judged blank or not ---------------------------


def test_a_40_megapixel_cutout_is_judged_blank_at_a_reduced_scale():
    # Before: is_blank decoded the whole picture into 32-bit numpy pixels (480 MB for
    # 40 megapixels) after the upload check had let it through at 1/8 scale.
    import tracemalloc

    from classifier.predictions import cutouts

    data = _baseline_40_megapixels()  # flat: blank by the rule
    tracemalloc.start()
    try:
        assert cutouts.is_blank(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"{peak:,} bytes"


def test_a_galaxy_cutout_is_still_not_blank():
    from classifier.predictions import cutouts
    from classifier.tests.utils import galaxy_jpeg

    assert not cutouts.is_blank(galaxy_jpeg())


# --- TIFF: many IFDs that share one strip, copied once each by the metadata stripper --------


def tiff_with_shared_strips(pages: int, shared: int) -> bytes:
    """A real 64x64 Deflate TIFF (Pillow's) followed by ``shared`` zero bytes and ``pages``
    more IFDs whose one strip is all of those bytes."""
    import io
    import struct

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, "TIFF", compression="tiff_deflate")
    data = bytearray(buffer.getvalue())
    offset = struct.unpack_from("<I", data, 4)[0]
    while True:  # the last IFD's link to the next one
        link_at = offset + 2 + 12 * struct.unpack_from("<H", data, offset)[0]
        offset = struct.unpack_from("<I", data, link_at)[0]
        if not offset:
            break
    data += b"\0" * (len(data) % 2)
    shared_at = len(data)
    data += bytes(shared)
    first = len(data)
    fields = [(256, 4, 64), (257, 4, 64), (259, 3, 1), (273, 4, shared_at), (279, 4, shared)]
    size = 2 + 12 * len(fields) + 4
    for page in range(pages):
        following = first + size * (page + 1) if page < pages - 1 else 0
        data += struct.pack("<H", len(fields))
        for tag, kind, value in fields:
            packed = struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0)
            data += struct.pack("<HHI", tag, kind, 1) + packed
        data += struct.pack("<I", following)
    struct.pack_into("<I", data, link_at, first)
    return bytes(data)


def test_ifds_sharing_one_strip_are_not_stored_once_per_ifd(anonymous_client, media_root):
    # Before: 40 IFDs pointing at the same 50 kB strip were copied 40 times: the stored file
    # was 40x the upload (a 4 MB file of 50 became 200 MB; 2,000 would be 8 GB in memory).
    from classifier.tests.utils import media_files

    data = tiff_with_shared_strips(40, 50_000)
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("pages.tif", data, "image/tiff")]},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    [stored] = media_files(media_root)
    assert stored.stat().st_size <= len(data)
