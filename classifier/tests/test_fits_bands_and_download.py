"""FITS for a new user (issue 20): the upload page says FITS is accepted, a cube whose header
names no bands is read as g, r, z with a warning (result page and the API's `warnings`), and
the stored file can be downloaded by whoever may see the prediction."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits as astropy_fits
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from classifier.core import fits
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import BANDS_ASSUMED_WARNING, Prediction
from classifier.tests.jobs_support import make_zip, run_chunks_inline, zip_upload
from classifier.tests.test_fits import cube_file, fits_bytes, galaxy_cube

pytestmark = pytest.mark.django_db


def unnamed_cube() -> bytes:
    """A g, r, z cube as some tools write it: three planes, no BAND0-2 keywords."""
    return fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube()))


def api_upload(client, data: bytes, name: str) -> dict:
    response = client.post(
        reverse("api:prediction-list"), {"image": [SimpleUploadedFile(name, data)]}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["predictions"][0]


def test_the_layout_says_when_the_bands_were_assumed():
    assert fits.inspect(unnamed_cube(), max_pixels=10**7).bands_assumed is True
    assert fits.inspect(cube_file(), max_pixels=10**7).bands_assumed is False
    partly = astropy_fits.Header()
    partly["BAND0"] = "g"
    layout = fits.inspect(fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube(), partly)), max_pixels=10**7)
    assert (layout.bands, layout.bands_assumed) == (("g", "r", "z"), True)
    # A single band has no planes to name.
    assert (
        fits.inspect(fits_bytes(astropy_fits.PrimaryHDU(galaxy_cube()[1])), max_pixels=10**7).bands_assumed
        is False
    )


def test_the_api_warns_about_a_cube_without_band_names(anonymous_client):
    unnamed = api_upload(anonymous_client, unnamed_cube(), "unnamed.fits")
    assert BANDS_ASSUMED_WARNING in unnamed["warnings"]
    named = api_upload(anonymous_client, cube_file(), "named.fits")
    assert BANDS_ASSUMED_WARNING not in named["warnings"]
    assert dict(Prediction.objects.values_list("original_filename", "bands_assumed")) == {
        "unnamed.fits": True,
        "named.fits": False,
    }


def test_the_result_page_warns_in_both_languages(client):
    for name, data in (("unnamed.fits", unnamed_cube()), ("named.fits", cube_file())):
        client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile(name, data)]})
    unnamed, named = Prediction.objects.order_by("pk")
    page = client.get(unnamed.get_absolute_url()).content.decode()
    assert 'id="bands-assumed-note"' in page
    assert "planes were read as g, r and z" in page
    assert 'id="bands-assumed-note"' not in client.get(named.get_absolute_url()).content.decode()
    spanish = client.get(unnamed.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "sus tres planos se leyeron como g, r y z" in spanish


def test_the_upload_page_lists_fits_as_good_input(client):
    page = client.get(reverse("classifier:upload")).content.decode()
    assert 'id="fits-input"' in page
    assert "FITS: a g, r, z cube" in page
    assert (
        "FITS: un cubo g, r, z"
        in client.get(reverse("classifier:upload"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    )


def test_the_stored_fits_file_downloads_under_its_name(client):
    data = cube_file()
    client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile("ngc 1300.fits", data)]})
    prediction = Prediction.objects.get()
    url = reverse("classifier:prediction-original", args=[prediction.pk])
    page = client.get(prediction.get_absolute_url()).content.decode()
    assert f'href="{url}" id="original-download"' in page
    assert "Download the FITS file" in page

    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="ngc 1300.fits"'
    assert b"".join(response.streaming_content) == data


def test_the_download_follows_the_access_rule(client, user, django_user_model, image_bytes):
    client.post(reverse("classifier:upload"), {"images": [SimpleUploadedFile("mine.png", image_bytes())]})
    prediction = Prediction.objects.get()
    url = reverse("classifier:prediction-original", args=[prediction.pk])
    assert client.get(url).status_code == 200  # the anonymous uploader's own session
    assert Client().get(url).status_code == 404  # another visitor
    assert (
        Client().get(reverse("classifier:prediction-original", args=[prediction.pk + 1])).status_code == 404
    )
    # A script with a token reads what its user may read (the audit log, outside jobs).
    token = Token.objects.create(user=user).key
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert Client().get(url, HTTP_AUTHORIZATION="Token " + "0" * 40).status_code == 401


def test_a_job_members_file_is_private_to_the_job(
    user, django_user_model, django_capture_on_commit_callbacks
):
    owner = django_user_model.objects.create_user(username="owner", password="owner-pass-123")
    submission = submission_from_uploads(archive=zip_upload(make_zip([("f/cube.fits", unnamed_cube())])))
    job = job_services.job_create(name=submission.name, members=submission.members, user=owner)
    run_chunks_inline(job)
    prediction = Prediction.objects.get(job=job)
    assert prediction.bands_assumed is True
    url = reverse("classifier:prediction-original", args=[prediction.pk])
    reader, own = Client(), Client()
    reader.force_login(user)
    own.force_login(owner)
    assert reader.get(url).status_code == 404
    response = own.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="cube.fits"'
    assert np.array_equal(
        astropy_fits.getdata(io.BytesIO(b"".join(response.streaming_content))), galaxy_cube()
    )
