"""FITS attacks (issue 21): headers that declare huge sizes, tile-compressed bombs and random
tiles, personal and location keywords in stored files, and previews decoded on every request.

Each attack is the crafted file itself, sent through the real code path: the API and the upload
page (a clear 4xx, nothing written), a job (a failed member with its reason beside a classified
JPEG, and the job ends), a fresh interpreter that measures its peak memory, and a real gunicorn
worker whose threads the attack used to hold.
"""

from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest
from astropy.io import fits as astropy_fits
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from classifier.core import fits, fits_header
from classifier.core.metadata.fits import strip_private_keywords
from classifier.core.preprocessing import ImageDecodeError
from classifier.models import Job, Prediction
from classifier.predictions import storage
from classifier.predictions.services import prediction_delete
from classifier.tests.gunicorn_server import (
    peak_rss_kb,
    post_images_at_once,
    running_gunicorn,
    wait_until_live,
)
from classifier.tests.jobs_support import (
    make_zip,
    run_chunks_inline,
    submit_archive,
    wait_until_ended,
)
from classifier.tests.test_decode_memory import SLACK_BYTES, WORKER_LIMIT_KB, measure
from classifier.tests.test_fits import cube_file, fits_bytes, galaxy_cube
from classifier.tests.utils import make_image_bytes, media_files
from classifier.tests.workers import Worker

pytestmark = pytest.mark.django_db

MAX_PIXELS = 40_000_000
BOMB_INFLATED_BYTES = 256 * 1024 * 1024


# --- the attack files --------------------------------------------------------------------


def header(*cards: tuple[str, object]) -> bytes:
    """One header written card by card, as an attacker would: no library checks what it says."""
    text = ""
    for keyword, value in cards:
        if isinstance(value, bool):
            shown = "T" if value else "F"
        else:
            shown = f"'{value}'" if isinstance(value, str) else value
        text += f"{keyword:<8}= {shown!s:>20}".ljust(80)[:80]
    text += "END".ljust(80)
    return text.ljust(-(-len(text) // fits_header.BLOCK) * fits_header.BLOCK).encode("ascii")


def naxis3_bomb() -> bytes:
    """The issue's file: 2,880 bytes declaring two billion 8x8 planes."""
    return header(
        ("SIMPLE", True),
        ("BITPIX", -32),
        ("NAXIS", 3),
        ("NAXIS1", 8),
        ("NAXIS2", 8),
        ("NAXIS3", 2_000_000_000),
    )


def huge_naxis() -> bytes:
    """Two billion axes, each of which a reader would look up."""
    return header(("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 2_000_000_000))


def huge_naxis_in_an_extension() -> bytes:
    return header(("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True)) + header(
        ("XTENSION", "IMAGE"), ("BITPIX", 8), ("NAXIS", 2_000_000_000), ("PCOUNT", 0), ("GCOUNT", 1)
    )


def table_declaring_a_huge_heap() -> bytes:
    """A table before a good image that declares 10^60 rows: skipping it would seek past the file."""
    return (
        header(("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True))
        + header(
            ("XTENSION", "BINTABLE"),
            ("BITPIX", 8),
            ("NAXIS", 2),
            ("NAXIS1", 8),
            ("NAXIS2", 10**60),
            ("PCOUNT", 0),
            ("GCOUNT", 1),
            ("TFIELDS", 1),
            ("TFORM1", "D"),
        )
        + cube_file()[fits_header.BLOCK :]
    )


def compressed(cmptype: str, tile: bytes, *, zbitpix: int = 16, side: int = 64) -> bytes:
    """A tile-compressed image (the FITS tiled image convention): one tile of ``side`` x ``side``
    pixels whose compressed bytes are ``tile``, in a binary table's heap, as fpack writes it."""
    column = astropy_fits.Column(
        name="COMPRESSED_DATA", format="1PB()", array=np.array([np.frombuffer(tile, np.uint8)], dtype=object)
    )
    table = astropy_fits.BinTableHDU.from_columns([column])
    for keyword, value in (
        ("ZIMAGE", True),
        ("ZCMPTYPE", cmptype),
        ("ZBITPIX", zbitpix),
        ("ZNAXIS", 2),
        ("ZNAXIS1", side),
        ("ZNAXIS2", side),
        ("ZTILE1", side),
        ("ZTILE2", side),
    ):
        table.header[keyword] = value
    return fits_bytes(astropy_fits.PrimaryHDU(), table)


def gzip_bomb_tile() -> bytes:
    """A GZIP_1 tile of 256 MB of zeros in about 250 kB, compressed piece by piece."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    piece = bytes(1024 * 1024)
    return b"".join(packer.compress(piece) for _ in range(BOMB_INFLATED_BYTES // len(piece))) + packer.flush()


def gzip_bomb() -> bytes:
    return compressed("GZIP_1", gzip_bomb_tile(), zbitpix=8)


def random_tile(cmptype: str) -> bytes:
    return compressed(cmptype, np.random.default_rng(21).bytes(4000))


def fpacked_cube() -> bytes:
    """A real RICE_1 file as astropy (like fpack) writes it, with one-pixel tiles."""
    image = (galaxy_cube()[1] * 1000).astype(np.int32)
    return fits_bytes(
        astropy_fits.PrimaryHDU(),
        astropy_fits.CompImageHDU(image, compression_type="RICE_1", tile_shape=(1, 1)),
    )


# (name, file, what the refusal says)
ATTACKS = [
    ("naxis3-2e9.fits", naxis3_bomb, "declares 512,000,000,000 bytes of data"),
    ("naxis-2e9.fits", huge_naxis, "NAXIS = 2000000000 is more than the standard's 999 axes"),
    ("ext-naxis-2e9.fits", huge_naxis_in_an_extension, "NAXIS = 2000000000 is more than"),
    ("huge-table.fits", table_declaring_a_huge_heap, "more than the file holds"),
    ("gzip-bomb.fits", gzip_bomb, "tile-compressed FITS images (GZIP_1) are not accepted"),
    ("rice.fits", lambda: random_tile("RICE_1"), "tile-compressed FITS images (RICE_1) are not accepted"),
    ("hcompress.fits", lambda: random_tile("HCOMPRESS_1"), "(HCOMPRESS_1) are not accepted"),
    ("plio.fits", lambda: random_tile("PLIO_1"), "(PLIO_1) are not accepted"),
    ("fpacked.fits", fpacked_cube, "(RICE_1) are not accepted"),
]
ATTACK_IDS = [name for name, _, _ in ATTACKS]


# --- the files are the attacks they claim to be ------------------------------------------


def test_the_header_attacks_are_one_or_two_blocks_declaring_billions():
    assert len(naxis3_bomb()) == fits_header.BLOCK
    assert astropy_fits.Header.fromstring(naxis3_bomb())["NAXIS3"] == 2_000_000_000
    assert astropy_fits.Header.fromstring(huge_naxis())["NAXIS"] == 2_000_000_000
    assert len(huge_naxis_in_an_extension()) == 2 * fits_header.BLOCK


def test_the_gzip_tile_inflates_to_hundreds_of_megabytes_for_a_64x64_image():
    data = gzip_bomb()
    assert len(data) < 400_000
    with astropy_fits.open(io.BytesIO(data), lazy_load_hdus=True) as hdus:
        # astropy takes it for a 64x64 tile-compressed image: 4,096 bytes once inflated.
        assert type(hdus[1]).__name__ == "CompImageHDU"
        assert hdus[1].shape == (64, 64)
    # Counted in bounded steps, never held: the one tile inflates to 256 MB.
    tile = gzip_bomb_tile()
    assert tile in data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    inflated = len(inflater.decompress(tile, 1 << 20))
    while inflater.unconsumed_tail:
        inflated += len(inflater.decompress(inflater.unconsumed_tail, 1 << 20))
    assert inflated == BOMB_INFLATED_BYTES


@pytest.mark.parametrize("cmptype", ["RICE_1", "HCOMPRESS_1"])
def test_astropy_takes_the_random_tiles_for_compressed_images(cmptype):
    with astropy_fits.open(io.BytesIO(random_tile(cmptype)), lazy_load_hdus=True) as hdus:
        assert type(hdus[1]).__name__ == "CompImageHDU"
        assert hdus[1].compression_type == cmptype


# --- refused from the headers, before anything is allocated ------------------------------


@pytest.mark.parametrize(("name", "make", "message"), ATTACKS, ids=ATTACK_IDS)
def test_inspect_refuses_each_attack(name, make, message):
    with pytest.raises(ImageDecodeError, match="FITS") as refused:
        fits.inspect(make(), max_pixels=MAX_PIXELS)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("cards", "message"),
    [
        ((("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 8), ("NAXIS2", -8)), "NAXIS2 = -8"),
        ((("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 8)), "NAXIS2 is missing"),
        ((("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 8), ("NAXIS2", 2.5)), "NAXIS2 = 2.5"),
        ((("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 8), ("NAXIS2", "8")), "NAXIS2 = 8 is"),
        ((("SIMPLE", True), ("BITPIX", 12), ("NAXIS", 2), ("NAXIS1", 8), ("NAXIS2", 8)), "BITPIX = 12"),
        ((("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 1000)), "NAXIS = 1000 is more"),
        ((("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 10**69), ("NAXIS2", 10**69)), "declares"),
        ((("SIMPLE", False), ("BITPIX", 8), ("NAXIS", 0)), "SIMPLE is not T"),
        ((("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0)), "holds no image"),
    ],
)
def test_malformed_or_oversized_headers_are_refused(cards, message):
    with pytest.raises(ImageDecodeError, match="FITS") as refused:
        fits.inspect(header(*cards), max_pixels=MAX_PIXELS)
    assert message in str(refused.value)


def test_a_header_without_end_is_refused():
    data = header(("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0))
    with pytest.raises(ImageDecodeError, match="no END card"):
        fits.inspect(data.replace(b"END ", b"XND "), max_pixels=MAX_PIXELS)


def test_the_shape_is_checked_before_the_file_size_allows_any_read():
    # A cube of eight planes whose data is all there: refused for its shape, as before.
    data = fits_bytes(astropy_fits.PrimaryHDU(np.zeros((8, 4, 4), np.float32)))
    with pytest.raises(ImageDecodeError, match="shape 8x4x4"):
        fits.inspect(data, max_pixels=MAX_PIXELS)


def test_a_value_astropy_cannot_use_is_a_refusal_not_a_crash():
    cube = fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube()[1]))
    # BSCALE is a number to astropy; a string there breaks its scaling.
    extend = b"EXTEND  =                    T"
    hostile = cube.replace(extend, b"BSCALE  = 'abc'".ljust(len(extend)), 1)
    assert hostile != cube
    layout = fits.inspect(hostile, max_pixels=MAX_PIXELS)
    with pytest.raises(ImageDecodeError, match="could not be read"):
        fits.read_rgb(hostile, layout)


# --- through the API and the upload page: a 400, nothing written -------------------------


@pytest.mark.parametrize(("name", "make", "message"), ATTACKS, ids=ATTACK_IDS)
def test_the_api_answers_400_and_writes_nothing(anonymous_client, media_root, name, make, message):
    response = anonymous_client.post(
        reverse("api:prediction-list"), {"image": [SimpleUploadedFile(name, make())]}, format="multipart"
    )
    assert response.status_code == 400, response.content
    assert message in json.dumps(response.json())
    assert not Prediction.objects.exists()
    assert media_files(media_root) == []


@pytest.mark.parametrize(
    ("name", "make", "message"), ATTACKS[:1] + ATTACKS[4:6], ids=ATTACK_IDS[:1] + ATTACK_IDS[4:6]
)
def test_the_upload_page_answers_400_and_writes_nothing(client, media_root, name, make, message):
    response = client.post(
        reverse("classifier:upload"),
        {"images": [SimpleUploadedFile(name, make())]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["filename"] == name
    assert message in error["error"]
    assert not Prediction.objects.exists()
    assert media_files(media_root) == []


def test_the_compressed_refusal_is_translated_on_the_upload_page(client):
    response = client.post(
        reverse("classifier:upload"),
        {"images": [SimpleUploadedFile("rice.fits", random_tile("RICE_1"))]},
        HTTP_ACCEPT="application/json",
        HTTP_ACCEPT_LANGUAGE="es",
    )
    assert response.status_code == 400
    assert "no se aceptan imágenes FITS comprimidas" in response.json()["errors"][0]["error"]


# --- in a job: a failed member with its reason; the good JPEG is classified; the job ends ---


def test_a_job_fails_each_attack_member_and_classifies_the_jpeg(user, django_capture_on_commit_callbacks):
    entries = [(name, make()) for name, make, _ in ATTACKS]
    entries.append(("good.jpg", make_image_bytes(fmt="JPEG", color=(40, 80, 160))))
    job = submit_archive(user, make_zip(entries))
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(job)
    assert job.status == Job.Status.SUCCEEDED
    assert (job.done, job.failed) == (1, len(ATTACKS))
    members = {member.path: member for member in job.members.all()}
    assert members["good.jpg"].status == "classified"
    for name, _, message in ATTACKS:
        assert members[name].status == "failed"
        assert message in members[name].error
    assert [p.original_filename for p in Prediction.objects.all()] == ["good.jpg"]


# --- memory: refused without being inflated or allocated ---------------------------------


@pytest.mark.slow
def test_the_attacks_cost_no_memory_in_a_fresh_worker_process(tmp_path):
    paths = []
    for name, make, _ in ATTACKS:
        path = tmp_path / name
        path.write_bytes(make())
        paths.append(str(path))
    results = measure(paths)
    report = "\n".join(
        f"{r['path'].rsplit('/', 1)[-1]}: {r['outcome']} +{r['peak_growth'] / 1e6:.1f} MB" for r in results
    )
    assert len(results) == len(ATTACKS), report
    for result in results:
        assert result["outcome"].startswith("refused: "), report
        assert result["peak_growth"] <= SLACK_BYTES, report


@pytest.mark.slow
def test_a_gunicorn_worker_stays_live_and_small_under_concurrent_fits_attacks(tmp_path):
    # The attack: eleven header bombs at once held every thread; with the compressed
    # bombs beside them a worker went past 2 GB.
    files = [("naxis3.fits", naxis3_bomb())] * 11 + [(name, make()) for name, make, _ in ATTACKS[1:]] * 2
    with running_gunicorn(
        tmp_path, workers=1, threads=4, migrate=True, runtime_only=True, API_ANON_THROTTLE_RATE="1000/minute"
    ) as server:
        server.wait_for_log("loaded model")
        wait_until_live(server)
        [worker] = server.worker_pids()
        results = post_images_at_once(f"{server.url}/api/predictions/", files)
        wait_until_live(server, timeout=10)
        peak_kb = peak_rss_kb(worker)
    assert results == [400] * len(files)
    assert peak_kb <= WORKER_LIMIT_KB, f"worker peak {peak_kb / 1024:.0f} MB"


# --- the stored copy: no personal or location keywords, the astrometry intact -------------

PRIVATE_CARDS = {
    "OBSERVER": "Jane Doe",
    "AUTHOR": "J. Doe",
    "USER": "jdoe",
    "OBSERVAT": "Backyard Observatory",
    "SITELAT": "+51 28 38",
    "SITELONG": "-00 00 05",
    "SITEELEV": 45.0,
    "GPS-LAT": 51.4772,
    "GPS-LON": -0.0014,
    "LATITUDE": 51.4772,
    "LONGITUD": -0.0014,
    "LAT-OBS": 51.4772,
    "LONG-OBS": -0.0014,
    "ELEV-OBS": 45.0,
    "OBSGEO-X": 3980608.9,
    "OBSGEO-Y": -102.5,
    "OBSGEO-Z": 4966861.3,
    "SWOWNER": "Jane Doe",
}
WCS_CARDS = {
    "CTYPE1": "RA---TAN",
    "CTYPE2": "DEC--TAN",
    "CRVAL1": 185.7289,
    "CRVAL2": 15.8229,
    "CRPIX1": 32.5,
    "CRPIX2": 32.5,
    "CD1_1": -7.28e-05,
    "CD1_2": 0.0,
    "CD2_1": 0.0,
    "CD2_2": 7.28e-05,
    "RADESYS": "ICRS",
    "EQUINOX": 2000.0,
    "DATE-OBS": "2019-04-01T03:12:00",
    "TELESCOP": "Mayall",
    "SURVEY": "DECaLS",
}


def private_cube() -> bytes:
    """A g, r, z cube whose headers (primary, image extension and a trailing table) carry the
    observer's name and the site's position beside the WCS, with checksums."""
    primary_header = astropy_fits.Header()
    primary_header["OBSERVER"] = "Jane Doe of 12 Long Street, a name long enough to need CONTINUE cards " * 2
    primary_header["HIERARCH ESO TEL GEOLAT"] = -24.6272
    primary_header["HIERARCH ESO TEL FOCU LEN"] = 120.0
    image_header = astropy_fits.Header()
    for index, band in enumerate(fits.CUBE_BANDS):
        image_header[f"BAND{index}"] = band
    image_header.update(PRIVATE_CARDS)
    image_header.update(WCS_CARDS)
    image_header.add_history("coadded by the pipeline")
    table = astropy_fits.BinTableHDU.from_columns([astropy_fits.Column(name="ra", format="D", array=[1.0])])
    table.header["SITELAT"] = "+51 28 38"
    buffer = io.BytesIO()
    astropy_fits.HDUList(
        [
            astropy_fits.PrimaryHDU(header=primary_header),
            astropy_fits.ImageHDU(galaxy_cube(), image_header),
            table,
        ]
    ).writeto(buffer, checksum=True)
    return buffer.getvalue()


def test_private_keywords_are_not_stored_and_the_wcs_and_pixels_are(anonymous_client, media_root):
    data = private_cube()
    response = anonymous_client.post(
        reverse("api:prediction-list"), {"image": [SimpleUploadedFile("cube.fits", data)]}, format="multipart"
    )
    assert response.status_code == 201, response.content
    [stored] = media_files(media_root)
    text = stored.read_bytes()
    for secret in (b"Jane", b"Doe", b"jdoe", b"Backyard", b"51 28 38", b"GEOLAT", b"OBSGEO", b"GPS-"):
        assert secret not in text
    with astropy_fits.open(io.BytesIO(data)) as sent, astropy_fits.open(io.BytesIO(text)) as kept:
        kept.verify("exception")
        assert len(kept) == 3
        for keyword in PRIVATE_CARDS:
            assert keyword in sent[1].header
            assert keyword not in kept[1].header
        assert "OBSERVER" not in kept[0].header
        assert "SITELAT" not in kept[2].header
        assert kept[0].header["HIERARCH ESO TEL FOCU LEN"] == 120.0
        for keyword, value in WCS_CARDS.items():
            assert kept[1].header[keyword] == value
        assert list(kept[1].header["HISTORY"]) == ["coadded by the pipeline"]
        # The data units are copied byte for byte: their DATASUM still holds; CHECKSUM went with
        # the changed headers.
        np.testing.assert_array_equal(kept[1].data, sent[1].data)
        assert kept[1].header["DATASUM"] == sent[1].header["DATASUM"]
        assert "CHECKSUM" not in kept[1].header
    assert astropy_fits.Header.fromstring(text[: fits_header.BLOCK]).get("OBSERVER") is None


def test_the_stored_copy_classifies_and_previews_as_the_upload_did(client, media_root):
    data = private_cube()
    client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile("cube.fits", data)]})
    prediction = Prediction.objects.get()
    preview = client.get(reverse("classifier:prediction-preview", args=[prediction.pk]))
    with Image.open(io.BytesIO(preview.content)) as image:
        np.testing.assert_array_equal(
            np.asarray(image), fits.read_rgb(data, fits.inspect(data, max_pixels=MAX_PIXELS))
        )


def test_a_file_without_private_keywords_is_stored_as_sent():
    data = cube_file()
    assert strip_private_keywords(data) is data


def test_trailing_bytes_that_are_no_hdu_are_not_stored():
    data = cube_file()
    kept = strip_private_keywords(data + b"OBSERVER= 'Jane Doe'")
    assert kept == data


# --- the preview: rendered once, stored beside the FITS file, deleted with it -------------


def test_the_preview_is_rendered_once_and_then_read_from_storage(client, media_root):
    data = cube_file()
    client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile("cube.fits", data)]})
    prediction = Prediction.objects.get()
    url = reverse("classifier:prediction-preview", args=[prediction.pk])
    assert [path.name for path in media_files(media_root)] == [prediction.image.name.rsplit("/", 1)[1]]
    first = client.get(url)
    assert first.status_code == 200
    preview = storage.preview_name(prediction.image.name)
    with default_storage.open(preview, "rb") as stored:
        assert stored.read() == first.content
    # The FITS file is no longer decodable: the second answer can only come from the stored PNG.
    (media_root / prediction.image.name).write_bytes(b"SIMPLE  = damaged")
    second = client.get(url)
    assert second.status_code == 200
    assert second.content == first.content


def test_the_stored_preview_goes_with_the_last_prediction_of_its_file(
    client, media_root, django_capture_on_commit_callbacks
):
    data = cube_file()
    for name in ("a.fits", "b.fits"):  # identical content: one stored file, shared
        client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile(name, data)]})
    first, second = Prediction.objects.order_by("pk")
    assert client.get(reverse("classifier:prediction-preview", args=[first.pk])).status_code == 200
    assert len(media_files(media_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        prediction_delete(prediction=first)
    assert len(media_files(media_root)) == 2  # the second prediction still shows both
    assert client.get(reverse("classifier:prediction-preview", args=[second.pk])).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        prediction_delete(prediction=second)
    assert media_files(media_root) == []


def test_no_preview_is_stored_for_a_file_that_no_row_refers_to(media_root):
    # A delete that won the race: the preview must not be written after the FITS file went.
    storage.store_preview("predictions/ab/gone.fits", b"\x89PNG")
    assert media_files(media_root) == []


def test_the_stored_preview_is_not_served_as_media(client, user, media_root):
    data = cube_file()
    client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile("cube.fits", data)]})
    prediction = Prediction.objects.get()
    client.get(reverse("classifier:prediction-preview", args=[prediction.pk]))
    client.force_login(user)
    assert client.get(prediction.image.url).status_code == 200
    assert client.get(prediction.image.url + ".png").status_code == 404


@pytest.fixture
def redis_worker(redis_celery, tmp_path):
    """One real `celery worker` on Redis, on a queue of this test's own."""
    worker = Worker(name="fits-attacks", broker_url=redis_celery, log_dir=tmp_path).wait_ready()
    yield worker
    worker.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_fails_the_attack_members_and_ends_the_job(redis_worker, user):
    # With astropy inflating the bomb, this chunk killed its worker and was redelivered forever.
    entries = [(name, make()) for name, make, _ in ATTACKS]
    entries.append(("good.jpg", make_image_bytes(fmt="JPEG", color=(40, 80, 160))))
    job = wait_until_ended(submit_archive(user, make_zip(entries)), timeout=180)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.done, job.failed) == (1, len(ATTACKS))
    reasons = dict(job.members.values_list("path", "error"))
    for name, _, message in ATTACKS:
        assert message in reasons[name]
    assert [p.original_filename for p in Prediction.objects.filter(job=job)] == ["good.jpg"]
    assert "Traceback" not in redis_worker.log
