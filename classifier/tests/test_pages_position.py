"""The upload page's "By position" tab (/position/): one position, in degrees or sexagesimal,
is classified from the stand-in cutout service; several lines become a job (logged in);
the result page shows the position, links to the Legacy Surveys viewer, and the history
and result exports carry ra, dec and the cutout URL."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from classifier.models import Job, Prediction
from classifier.predictions.exports import CSV_COLUMNS, GALAXY_ZOO_COLUMNS
from classifier.tests.jobs_support import run_chunks_inline
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db

URL = reverse("classifier:position")


def test_the_upload_page_links_both_tabs(client):
    page = client.get(reverse("classifier:upload")).content.decode()
    assert f'href="{URL}" id="tab-position"' in page
    position_page = client.get(URL).content.decode()
    assert 'id="tab-position" class="upload-tab" aria-current="page"' in position_page


@pytest.mark.parametrize(
    ("typed", "ra", "dec"),
    [
        ("150.1163 2.2058", 150.1163, 2.2058),
        ("150.1163, +2.2058", 150.1163, 2.2058),
        ("10h00m27.912s +02d12m20.88s", 150.1163, 2.2058),
        ("10:00:27.912 +02:12:20.88", 150.1163, 2.2058),
    ],
)
def test_one_position_is_classified_and_its_page_shows_where_it_came_from(
    client, cutout_server, typed, ra, dec
):
    response = client.post(URL, {"positions": typed})

    assert response.status_code == 302, response.content.decode()[:2000]
    prediction = Prediction.objects.get()
    assert (prediction.ra, prediction.dec) == (pytest.approx(ra, abs=1e-6), pytest.approx(dec, abs=1e-6))
    assert prediction.source == Prediction.Source.WEB
    page = client.get(response["Location"]).content.decode()
    assert f"{prediction.ra:.6f}°, {prediction.dec:.6f}°" in page
    assert f'href="https://www.legacysurvey.org/viewer?ra={prediction.ra:.6f}&amp;dec=' in page
    assert "&amp;zoom=15" in page


def test_the_position_is_shown_with_a_dot_in_spanish(client, cutout_server):
    client.post(URL, {"positions": "150.1163 -2.2058"})
    prediction = Prediction.objects.get()
    page = client.get(prediction.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "150.116300°, -2.205800°" in page
    assert "Posición en el cielo" in page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Type at least one position."),
        ("somewhere over there", "Line 1 is not a sky position"),
        ("150 95", "Line 1 is not a sky position: dec must be in [-90, 90] degrees"),
        ("150 2\nnan 2", "Line 2 is not a sky position: ra must be a finite number"),
    ],
)
def test_bad_positions_are_refused_and_nothing_is_fetched(client, cutout_server, media_root, typed, message):
    response = client.post(URL, {"positions": typed})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Prediction.objects.exists()
    assert cutout_server.hits() == []
    assert media_files(media_root) == []


def test_no_imaging_is_said_and_nothing_is_saved(client, cutout_server, media_root):
    response = client.post(URL, {"positions": "10 -85"})

    assert response.status_code == 422
    assert "The survey has no imaging at this position" in response.content.decode()
    assert not Prediction.objects.exists()


def test_a_failing_service_is_said_and_nothing_is_saved(client, cutout_server, media_root):
    response = client.post(URL, {"positions": "320.5 10"})

    assert response.status_code == 502
    assert "cutout service failed, nothing was saved" in response.content.decode()
    assert not Prediction.objects.exists()


def test_a_list_of_positions_becomes_a_job(client, user, cutout_server):
    client.force_login(user)
    response = client.post(URL, {"positions": "150.1 2.2\n10h00m00s +01d00m00s\n\n10 -85\n"})

    assert response.status_code == 302
    job = run_chunks_inline(Job.objects.get())
    assert response["Location"] == job.get_absolute_url()
    assert (job.by_position, job.user, job.total, job.done, job.failed) == (True, user, 3, 2, 1)
    assert job.catalogue_columns == ["position", "ra", "dec"]
    assert job.members.get(path="row 2").catalogue == {
        "position": "10h00m00s +01d00m00s",
        "ra": "150.000000",
        "dec": "1.000000",
    }


def test_a_list_needs_a_login(client, cutout_server):
    response = client.post(URL, {"positions": "150.1 2.2\n151 2"})

    assert response.status_code == 403
    assert "Log in to classify a list of positions" in response.content.decode()
    assert not Job.objects.exists()


def test_history_export_has_the_position_columns(client, staff, cutout_server):
    client.post(URL, {"positions": "150.1 2.2"})
    client.force_login(staff)
    rows = list(csv.reader(io.StringIO(client.get(reverse("classifier:history-csv")).content.decode())))

    assert tuple(rows[0]) == CSV_COLUMNS
    # The position columns, then the Galaxy Zoo answers (last in every export).
    end = len(CSV_COLUMNS) - len(GALAXY_ZOO_COLUMNS)
    assert CSV_COLUMNS[end - 3 : end] == ("ra", "dec", "cutout_url")
    assert rows[1][end - 3 : end - 1] == ["150.100000", "2.200000"]
    assert rows[1][end - 1].startswith(cutout_server.base)
