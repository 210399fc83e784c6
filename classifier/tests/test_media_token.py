"""/media/ for scripts: the API's image_url answers a caller with an API token (issue 20).

A script that classified through the API with "Authorization: Token ..." got 404 from the
image_url in the answer. The token now counts as that user's login here, under the same
access rule as the API and the pages (classifier.predictions.ownership).
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload

pytestmark = pytest.mark.django_db


def token_header(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


def test_a_script_downloads_the_image_it_classified(user, image_bytes):
    script = Client()
    headers = token_header(user)
    data = image_bytes(fmt="PNG")
    response = script.post(
        reverse("api:prediction-list"),
        {"image": SimpleUploadedFile("galaxy.png", data, content_type="image/png")},
        **headers,
    )
    assert response.status_code == 201, response.content
    image_url = response.json()["predictions"][0]["image_url"]

    download = script.get(image_url, **headers)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == data
    assert download["Cache-Control"] == "private, max-age=3600"
    # The token is for this request only: no session was opened for the script.
    assert "sessionid" not in download.cookies
    # The same URL without the token is still refused, as before.
    assert Client().get(image_url).status_code == 404


def test_a_token_reads_only_what_its_user_may_read(user, staff, django_user_model):
    """A job's predictions are private to the job's owner (and staff), for tokens too."""
    owner = django_user_model.objects.create_user(username="owner", password="owner-pass-123")
    submission = submission_from_uploads(archive=zip_upload(make_zip([("g.png", distinct_images(1)[0])])))
    job = job_services.job_create(name=submission.name, members=submission.members, user=owner)
    run_chunks_inline(job)
    url = Prediction.objects.get(job=job).image.url

    assert Client().get(url, **token_header(user)).status_code == 404
    assert Client().get(url, **token_header(owner)).status_code == 200
    assert Client().get(url, **token_header(staff)).status_code == 200


def test_a_bad_token_gets_401(user):
    url = PredictionFactory().image.url
    response = Client().get(url, HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
