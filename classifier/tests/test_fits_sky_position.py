"""FITS uploads with a celestial WCS are recorded at the sky position of their centre
(astropy.wcs on the header that classifier.core.fits walked and checked), shown on the result
page with a link to the Legacy Surveys viewer; without a usable WCS they have no position."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits as astropy_fits
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from classifier.core import fits_header
from classifier.core.decode import DecodeLimits, prepare_image
from classifier.core.manifest import ModelManifest
from classifier.core.metadata import strip_metadata
from classifier.models import Prediction

pytestmark = pytest.mark.django_db

SIZE = 64
PIXEL_DEG = 0.262 / 3600


def galaxy_cube() -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    blob = np.exp(-(x**2 + y**2) / (2 * (SIZE / 8) ** 2)).astype(np.float32)
    return np.stack([blob * w for w in (0.5, 1.0, 1.5)])


def fits_file(wcs: dict[str, object] | None) -> bytes:
    header = astropy_fits.Header()
    for index, band in enumerate("grz"):
        header[f"BAND{index}"] = band
    for key, value in (wcs or {}).items():
        header[key] = value
    buffer = io.BytesIO()
    astropy_fits.PrimaryHDU(galaxy_cube(), header).writeto(buffer)
    return buffer.getvalue()


def tan(ctype: tuple[str, str], crval: tuple[float, float], crpix: tuple[float, float]) -> dict[str, object]:
    return {
        "CTYPE1": ctype[0],
        "CTYPE2": ctype[1],
        "CRVAL1": crval[0],
        "CRVAL2": crval[1],
        "CRPIX1": crpix[0],
        "CRPIX2": crpix[1],
        "CD1_1": -PIXEL_DEG,
        "CD1_2": 0.0,
        "CD2_1": 0.0,
        "CD2_2": PIXEL_DEG,
    }


def upload(client, data: bytes) -> Prediction:
    image = SimpleUploadedFile("cutout.fits", data, content_type="application/fits")
    response = client.post(reverse("api:prediction-list"), {"image": [image]}, format="multipart")
    assert response.status_code == 201, response.content
    return Prediction.objects.get(pk=response.json()["predictions"][0]["id"])


def test_the_centre_of_an_icrs_wcs_is_recorded(anonymous_client):
    # FITS pixels count from 1: the centre of 64 pixels is 32.5.
    prediction = upload(
        anonymous_client, fits_file(tan(("RA---TAN", "DEC--TAN"), (150.1, 2.2), (32.5, 32.5)))
    )

    assert (prediction.ra, prediction.dec) == (pytest.approx(150.1, abs=1e-6), pytest.approx(2.2, abs=1e-6))
    assert prediction.cutout_url == ""
    assert prediction.viewer_url == "https://www.legacysurvey.org/viewer?ra=150.100000&dec=2.200000&zoom=15"


def test_the_centre_is_not_the_reference_pixel(anonymous_client):
    # Reference pixel at the corner: the centre is 31.5 pixels east (RA decreases with x) and north.
    prediction = upload(anonymous_client, fits_file(tan(("RA---TAN", "DEC--TAN"), (10.0, 0.0), (1.0, 1.0))))

    assert prediction.ra == pytest.approx(10.0 - 31.5 * PIXEL_DEG, abs=1e-6)
    assert prediction.dec == pytest.approx(31.5 * PIXEL_DEG, abs=1e-6)


def test_a_centre_that_rounds_to_ra_360_is_recorded_at_ra_0(anonymous_client):
    # The same rounding and wrap as a position sent to the API (classifier.core.positions).
    prediction = upload(
        anonymous_client, fits_file(tan(("RA---TAN", "DEC--TAN"), (359.9999999, 2.2), (32.5, 32.5)))
    )

    assert (prediction.ra, prediction.dec) == (0.0, pytest.approx(2.2, abs=1e-6))


def test_a_galactic_wcs_is_converted_to_icrs(anonymous_client):
    prediction = upload(
        anonymous_client, fits_file(tan(("GLON-TAN", "GLAT-TAN"), (120.0, 30.0), (32.5, 32.5)))
    )

    expected = SkyCoord(l=120.0, b=30.0, unit="deg", frame="galactic").icrs
    assert prediction.ra == pytest.approx(expected.ra.deg, abs=1e-5)
    assert prediction.dec == pytest.approx(expected.dec.deg, abs=1e-5)


@pytest.mark.parametrize(
    "wcs",
    [
        None,
        {"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ", "CRVAL1": 10.0, "CRVAL2": 0.0},
        {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR"},
        {**tan(("RA---TAN", "DEC--TAN"), (10.0, 95.0), (32.5, 32.5))},
    ],
    ids=["no-wcs", "unknown-projection", "not-celestial", "dec-out-of-range"],
)
def test_no_usable_wcs_means_no_position_and_the_upload_still_works(anonymous_client, wcs):
    prediction = upload(anonymous_client, fits_file(wcs))

    assert (prediction.ra, prediction.dec) == (None, None)
    assert prediction.viewer_url == ""


def test_the_result_page_shows_a_fits_files_position(client, user):
    client.force_login(user)
    image = SimpleUploadedFile(
        "cutout.fits",
        fits_file(tan(("RA---TAN", "DEC--TAN"), (150.1, 2.2), (32.5, 32.5))),
        "application/fits",
    )
    response = client.post(reverse("classifier:upload"), {"images": [image]})
    assert response.status_code == 302

    page = client.get(response["Location"]).content.decode()
    assert "150.100000°, 2.200000°" in page
    assert "centre of the uploaded FITS file's sky coordinates (WCS)" in page
    assert 'href="https://www.legacysurvey.org/viewer?ra=150.100000&amp;dec=2.200000&amp;zoom=15"' in page


def test_the_headers_are_walked_once_per_upload(monkeypatch):
    # Validation walks them; the sky centre reads the image HDU's WCS from that walk, and the
    # stored copy's keyword stripper is given it.
    walks = []
    walk = fits_header.walk

    def counting_walk(data):
        walks.append(len(data))
        return walk(data)

    monkeypatch.setattr(fits_header, "walk", counting_walk)
    wcs = tan(("RA---TAN", "DEC--TAN"), (150.0, 2.0), ((SIZE + 1) / 2, (SIZE + 1) / 2))
    data = fits_file({**wcs, "OBSERVER": "Jane Doe"})
    config = ModelManifest.read(Path(settings.MODEL_MANIFEST)).preprocessing
    prepared = prepare_image(data, config, DecodeLimits())
    stored = strip_metadata(data, "FITS", fits_headers=prepared.fits_headers)
    assert prepared.sky_centre == pytest.approx((150.0, 2.0), abs=1e-6)
    assert b"Jane Doe" not in stored
    assert walks == [len(data)]
