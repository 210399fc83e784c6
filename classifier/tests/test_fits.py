"""FITS cutouts: the DECaLS colour recipe on known values, the shapes that are accepted and
refused, and FITS uploads through the page, the API, `classify` and the preview view."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits as astropy_fits
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from classifier.core import fits
from classifier.core.preprocessing import ImageDecodeError
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Prediction
from classifier.tests.jobs_support import make_zip, run_chunks_inline, zip_upload
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db

MAX_PIXELS = 10_000_000


def fits_bytes(*hdus: astropy_fits.hdu.base.ExtensionHDU | astropy_fits.PrimaryHDU) -> bytes:
    buffer = io.BytesIO()
    astropy_fits.HDUList(list(hdus)).writeto(buffer)
    return buffer.getvalue()


def galaxy_cube(size: int = 64, *, bands: tuple[str, ...] = ("g", "r", "z")) -> np.ndarray:
    """A round, centrally bright blob in nanomaggies, redder in z, like a cutout of an elliptical."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(x**2 + y**2) / (2 * (size / 8) ** 2)).astype(np.float32)
    weights = {"g": 0.5, "r": 1.0, "i": 1.2, "z": 1.5}
    return np.stack([blob * weights[band] for band in bands])


def cube_file(data: np.ndarray | None = None, *, bands: tuple[str, ...] = ("g", "r", "z")) -> bytes:
    header = astropy_fits.Header()
    for index, band in enumerate(bands):
        header[f"BAND{index}"] = band
    return fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube(bands=bands) if data is None else data, header))


def table_hdu() -> astropy_fits.BinTableHDU:
    return astropy_fits.BinTableHDU.from_columns([astropy_fits.Column(name="ra", format="D", array=[1.0])])


def expected_pixel(values: dict[str, float]) -> tuple[float, float, float]:
    """The viewer's dr2_rgb for one pixel, written out from docs/fits.md with math only."""
    scales = {"g": 6.0, "r": 3.4, "z": 2.2}
    m, q = 0.03, 20.0
    x = {band: values[band] * scales[band] + m for band in values}
    intensity = sum(max(0.0, v) for v in x.values()) / len(x)
    stretched = math.asinh(q * intensity) / math.sqrt(q)
    intensity = intensity or 1e-6
    red, green, blue = (min(1.0, max(0.0, x[b] * stretched / intensity)) for b in ("z", "r", "g"))
    return red, green, blue


@pytest.mark.parametrize(
    "pixel",
    [
        {"g": 0.1, "r": 0.2, "z": 0.3},
        {"g": 0.0, "r": 0.0, "z": 0.0},
        {"g": -1.0, "r": 0.05, "z": 0.02},
        {"g": 5.0, "r": 8.0, "z": 12.0},
    ],
)
def test_decals_rgb_matches_the_documented_formula(pixel):
    images = [np.full((2, 3), pixel[band], np.float32) for band in ("g", "r", "z")]
    rgb = fits.decals_rgb(images, ("g", "r", "z"))
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_allclose(rgb[1, 2], expected_pixel(pixel), rtol=1e-5, atol=1e-6)


def test_decals_rgb_known_value():
    # Worked by hand in docs/fits.md.
    rgb = fits.decals_rgb([np.full((1, 1), v, np.float32) for v in (0.1, 0.2, 0.3)], ("g", "r", "z"))
    np.testing.assert_allclose(rgb[0, 0], (0.75237, 0.77418, 0.68695), atol=5e-5)


def test_band_order_in_the_header_is_honoured():
    cube = galaxy_cube()
    in_order = fits.read_rgb(cube_file(cube), fits.inspect(cube_file(cube), max_pixels=MAX_PIXELS))
    shuffled = cube_file(cube[[2, 0, 1]], bands=("z", "g", "r"))
    np.testing.assert_array_equal(
        fits.read_rgb(shuffled, fits.inspect(shuffled, max_pixels=MAX_PIXELS)), in_order
    )


def test_cube_is_coloured_and_flipped_north_up():
    cube = np.zeros((3, 4, 5), np.float32)
    cube[:, 0, 0] = 1.0  # FITS row 0 is the bottom row
    data = cube_file(cube)
    layout = fits.inspect(data, max_pixels=MAX_PIXELS)
    assert (layout.width, layout.height, layout.band_count) == (5, 4, 3)
    rgb = fits.read_rgb(data, layout)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (4, 5, 3)
    expected = np.round(np.array(expected_pixel({"g": 1.0, "r": 1.0, "z": 1.0})) * 255)
    np.testing.assert_array_equal(rgb[-1, 0], expected)
    assert rgb[0, 0].tolist() == rgb[0, 1].tolist()  # empty sky elsewhere


def test_single_band_is_grey_through_the_r_stretch():
    image = np.linspace(0, 2, 12, dtype=np.float32).reshape(3, 4)
    data = fits_bytes(astropy_fits.PrimaryHDU(image))
    layout = fits.inspect(data, max_pixels=MAX_PIXELS)
    assert layout.band_count == 1
    rgb = fits.read_rgb(data, layout)
    assert (rgb[..., 0] == rgb[..., 1]).all()
    assert (rgb[..., 1] == rgb[..., 2]).all()
    x = 2.0 * 3.4 + 0.03
    top_right = round(min(1.0, math.asinh(20 * x) / math.sqrt(20)) * 255)
    assert rgb[0, -1, 0] == top_right  # the last FITS row is the top row


def test_first_image_hdu_among_extensions_is_used():
    cube = galaxy_cube()
    table = astropy_fits.BinTableHDU.from_columns([astropy_fits.Column(name="ra", format="D", array=[1.0])])
    data = fits_bytes(
        astropy_fits.PrimaryHDU(), table, astropy_fits.ImageHDU(cube), astropy_fits.ImageHDU(cube * 0)
    )
    layout = fits.inspect(data, max_pixels=MAX_PIXELS)
    assert layout.index == 2
    assert fits.read_rgb(data, layout).max() > 200


def test_nans_are_empty_sky_but_nan_only_is_refused():
    cube = galaxy_cube()
    cube[:, :10, :10] = np.nan
    data = cube_file(cube)
    rgb = fits.read_rgb(data, fits.inspect(data, max_pixels=MAX_PIXELS))
    assert rgb.max() > 200
    nan_only = cube_file(np.full((3, 8, 8), np.nan, np.float32))
    with pytest.raises(ImageDecodeError, match="no finite values"):
        fits.read_rgb(nan_only, fits.inspect(nan_only, max_pixels=MAX_PIXELS))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: fits_bytes(astropy_fits.PrimaryHDU(np.zeros((2, 8, 8), np.float32))), "shape 2x8x8"),
        (lambda: fits_bytes(astropy_fits.PrimaryHDU(np.zeros((2, 3, 8, 8), np.float32))), "shape 2x3x8x8"),
        (lambda: fits_bytes(astropy_fits.PrimaryHDU(np.zeros(8, np.float32))), "shape 8"),
        (lambda: cube_file(galaxy_cube(bands=("g", "r", "i")), bands=("g", "r", "i")), "bands g, r, i"),
        (
            lambda: fits_bytes(
                astropy_fits.PrimaryHDU(),
                astropy_fits.BinTableHDU.from_columns(
                    [astropy_fits.Column(name="ra", format="D", array=[1.0])]
                ),
            ),
            "a table, not an image",
        ),
        (lambda: fits_bytes(astropy_fits.PrimaryHDU()), "no image"),
        (lambda: b"SIMPLE  =" + b"garbage" * 10, "could not be read"),
    ],
)
def test_unsupported_files_are_refused(data, message):
    with pytest.raises(ImageDecodeError, match=message):
        fits.inspect(data(), max_pixels=MAX_PIXELS)


def test_degenerate_leading_axes_are_dropped():
    data = fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube()[None]))
    assert fits.inspect(data, max_pixels=MAX_PIXELS).shape == (3, 64, 64)


def test_astropy_is_imported_only_when_a_fits_file_arrives(settings):
    # A fresh interpreter: this test process has astropy loaded already.
    script = (
        "import sys, django, os;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'galaxysite.settings');"
        "django.setup();"
        "from classifier.predictions.inference import get_classifier;"
        "from classifier.tests.utils import make_image_bytes;"
        "get_classifier().prepare(make_image_bytes());"
        "print('astropy' in sys.modules)"
    )
    run = {"capture_output": True, "text": True, "cwd": settings.BASE_DIR}
    result = subprocess.run([sys.executable, "-c", script], check=True, **run)
    assert result.stdout.strip() == "False"
    script = script.replace("make_image_bytes()", "open(sys.argv[1], 'rb').read()")
    path = settings.MEDIA_ROOT / "cube.fits"
    path.write_bytes(cube_file())
    result = subprocess.run([sys.executable, "-c", script, str(path)], check=True, **run)
    assert result.stdout.strip() == "True"


# --- through the service layer: page, API, classify, preview ----------------------------------


def upload_page(client: Client, data: bytes, name: str = "cutout.fits"):
    return client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile(name, data)]})


def test_page_upload_stores_the_original_and_shows_a_png_preview(client, media_root):
    data = cube_file()
    response = upload_page(client, data)
    assert response.status_code == 302
    prediction = Prediction.objects.get()
    assert prediction.image.name.endswith(".fits")
    assert (prediction.width, prediction.height) == (64, 64)
    [stored] = media_files(media_root)
    assert stored.read_bytes() == data
    page = client.get(prediction.get_absolute_url())
    preview_url = reverse("classifier:prediction-preview", args=[prediction.pk])
    assert preview_url in page.content.decode()
    preview = client.get(preview_url)
    assert preview.status_code == 200
    assert preview["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(preview.content)) as image:
        assert image.size == (64, 64)
        assert image.mode == "RGB"
        expected = fits.read_rgb(data, fits.inspect(data, max_pixels=MAX_PIXELS))
        np.testing.assert_array_equal(np.asarray(image), expected)


def test_preview_follows_the_media_access_rule(client, media_root):
    upload_page(client, cube_file())
    prediction = Prediction.objects.get()
    preview_url = reverse("classifier:prediction-preview", args=[prediction.pk])
    assert Client().get(preview_url).status_code == 404
    assert client.get(reverse("classifier:prediction-preview", args=[prediction.pk + 1])).status_code == 404


def test_preview_of_a_non_fits_prediction_is_404(client, image_bytes):
    client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile("a.png", image_bytes())]})
    prediction = Prediction.objects.get()
    assert client.get(reverse("classifier:prediction-preview", args=[prediction.pk])).status_code == 404
    assert prediction.display_image_url == prediction.image.url


def test_single_band_is_classified_with_a_logged_warning(anonymous_client, caplog):
    data = fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube()[1]))
    with caplog.at_level("WARNING", logger="classifier.core.inference"):
        response = anonymous_client.post(
            reverse("api:prediction-list"),
            {"image": [SimpleUploadedFile("grey.fits", data)]},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    assert "trained on colour" in caplog.text
    [created] = response.json()["predictions"]
    assert created["single_band"] is True
    assert any("single band" in warning for warning in created["warnings"])
    assert Prediction.objects.get().single_band is True


def test_a_colour_cube_is_not_single_band(anonymous_client):
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("cube.fits", cube_file())]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    [created] = response.json()["predictions"]
    assert created["single_band"] is False
    assert not any("single band" in warning for warning in created["warnings"])


def test_result_page_warns_about_a_grey_fits_only(client):
    upload_page(client, fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube()[1])), "grey.fits")
    upload_page(client, cube_file(), "cube.fits")
    grey, cube = Prediction.objects.order_by("pk")
    assert 'id="grey-fits-note"' in client.get(grey.get_absolute_url()).content.decode()
    assert 'id="grey-fits-note"' not in client.get(cube.get_absolute_url()).content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: cube_file(np.full((3, 8, 8), np.nan, np.float32)), "no finite values"),
        (
            lambda: fits_bytes(
                astropy_fits.PrimaryHDU(),
                astropy_fits.BinTableHDU.from_columns(
                    [astropy_fits.Column(name="ra", format="D", array=[1.0])]
                ),
            ),
            "a table, not an image",
        ),
        (lambda: fits_bytes(astropy_fits.PrimaryHDU(np.zeros((5, 8, 8), np.float32))), "shape 5x8x8"),
    ],
)
def test_api_refuses_bad_fits_with_400_and_writes_nothing(anonymous_client, media_root, data, message):
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile("bad.fits", data())]},
        format="multipart",
    )
    assert response.status_code == 400
    assert message in json.dumps(response.json())
    assert not Prediction.objects.exists()
    assert media_files(media_root) == []


def test_huge_arrays_are_refused_by_the_decode_limit(anonymous_client, settings, media_root):
    settings.MAX_DECODE_BYTES = 1_000_000
    data = cube_file(np.zeros((3, 200, 200), np.float64))  # 0.96 MB of values, 3.6 MB to decode
    response = anonymous_client.post(
        reverse("api:prediction-list"), {"image": [SimpleUploadedFile("big.fits", data)]}, format="multipart"
    )
    assert response.status_code == 400
    assert "3x200x200 values of 64 bits" in json.dumps(response.json())
    assert not Prediction.objects.exists()
    assert media_files(media_root) == []


def test_classify_command_picks_up_fits_in_folders(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "a.fits").write_bytes(cube_file())
    stdout = io.StringIO()
    call_command("classify", str(tmp_path), stdout=stdout, stderr=io.StringIO())
    rows = stdout.getvalue().splitlines()
    assert len(rows) == 2
    assert "a.fits" in rows[1]


def test_job_members_may_be_fits(user, django_capture_on_commit_callbacks):
    submission = submission_from_uploads(
        archive=zip_upload(
            make_zip(
                [
                    ("north/cube.fits", cube_file()),
                    ("grey.fits", fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube()[1]))),
                    ("table.fits", fits_bytes(astropy_fits.PrimaryHDU(), table_hdu())),
                ]
            )
        )
    )
    job = job_services.job_create(
        name=submission.name, members=submission.members, catalogue=submission.catalogue, user=user
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(job)
    statuses = dict(job.members.values_list("path", "status"))
    assert statuses == {"north/cube.fits": "classified", "grey.fits": "classified", "table.fits": "failed"}
    assert "a table, not an image" in job.members.get(path="table.fits").error
    assert sorted(p.image.name.rsplit(".", 1)[1] for p in Prediction.objects.all()) == ["fits", "fits"]
