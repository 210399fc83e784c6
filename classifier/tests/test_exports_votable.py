"""GET /api/jobs/{id}/results.vot: the job results as a VOTable that TOPCAT and astropy read.

Every file is parsed back with astropy.io.votable, with every VOTable warning turned into an
error, and validated against the VOTable schema; the columns must be the CSV's, in its order,
with the datatypes, units and UCDs astronomers' tools look for.
"""

from __future__ import annotations

import csv
import io
import re
import warnings

import numpy as np
import pytest
from astropy.io.votable import parse, validate
from astropy.io.votable.ucd import check_ucd
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Job
from classifier.predictions.exports import GALAXY_ZOO_COLUMNS
from classifier.predictions.votable import VOTABLE_CONTENT_TYPE
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload

pytestmark = pytest.mark.django_db

PROBABILITY = ("double", None, "stat.probability")
RESULT_FIELDS = {
    "path": ("unicodeChar", None, "meta.id;meta.file"),
    "prediction": ("unicodeChar", None, "src.morph.type"),
    "class_index": ("short", None, "meta.code.class"),
    "confidence": PROBABILITY,
    **dict.fromkeys(CLASS_NAMES, PROBABILITY),
    "in_distribution": ("boolean", None, "meta.code.qual"),
    "ood_score": ("double", None, "stat.value"),
    "single_band": ("boolean", None, "meta.code"),
    "status": ("unicodeChar", None, "meta.code.status"),
    "error": ("unicodeChar", None, "meta.note"),
    **dict.fromkeys(GALAXY_ZOO_COLUMNS, PROBABILITY),
}


@pytest.fixture
def other_user(django_user_model):
    """Another logged-in user: must not read the owner's results."""
    return django_user_model.objects.create_user(username="other", password="other-pass-123")


def _job(owner, entries, capture) -> Job:
    submission = submission_from_uploads(archive=zip_upload(make_zip(entries)))
    with capture(execute=True):
        job = job_services.job_create(
            name=submission.name, members=submission.members, catalogue=submission.catalogue, user=owner
        )
    return run_chunks_inline(job)


@pytest.fixture
def catalogue_job(user, django_capture_on_commit_callbacks) -> Job:
    """Two galaxies with a catalogue (id, RA, Dec, a number and text), and a member that fails."""
    images = distinct_images(2)
    catalogue = (
        b"file,id,RA,Dec,redshift,comment\n"
        b"field/g0.png,J001,10.5,-3.25,0.031,<b>&amp; bold</b>\n"
        b"g1.png,=HYPERLINK(1),11,4,0.2,plain\n"
        b"notes.txt,N1,12.125,-80.5,,\n"
    )
    entries = [
        ("field/g0.png", images[0]),
        ("g1.png", images[1]),
        ("notes.txt", b"not an image"),
        ("catalogue.csv", catalogue),
    ]
    return _job(user, entries, django_capture_on_commit_callbacks)


def _votable_bytes(client, job: Job, **headers) -> bytes:
    response = client.get(reverse("api:job-results-votable", args=[job.pk]), **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == VOTABLE_CONTENT_TYPE
    assert f'filename="job-{job.pk}-results.vot"' in response["Content-Disposition"]
    return b"".join(response.streaming_content)


def _parse_strictly(data: bytes):
    """Parse as TOPCAT's strictest reader would: any VOTable warning fails the test."""
    report = io.StringIO()
    assert validate(io.BytesIO(data), output=report, xmllint=False), report.getvalue()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        votable = parse(io.BytesIO(data), verify="exception")
    assert votable.version == "1.4"
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert b'<VOTABLE version="1.4"' in data
    assert len(votable.resources) == 1
    assert len(votable.resources[0].tables) == 1
    return votable


def _csv_rows(client, job: Job) -> list[list[str]]:
    response = client.get(reverse("api:job-results-csv", args=[job.pk]))
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def _fields(table) -> dict[str, tuple[str, str | None, str | None]]:
    return {field.name: (field.datatype, field.unit and str(field.unit), field.ucd) for field in table.fields}


def test_columns_are_the_csvs_with_datatypes_units_and_ucds(catalogue_job, user_client):
    table = _parse_strictly(_votable_bytes(user_client, catalogue_job)).get_first_table()
    header = _csv_rows(user_client, catalogue_job)[0]
    assert [field.name for field in table.fields] == header
    assert _fields(table) == {
        **RESULT_FIELDS,
        "id": ("unicodeChar", None, "meta.id"),
        "RA": ("double", "deg", "pos.eq.ra;meta.main"),
        "Dec": ("double", "deg", "pos.eq.dec;meta.main"),
        "redshift": ("double", None, None),
        "comment": ("unicodeChar", None, None),
    }
    for field in table.fields:
        if field.ucd:
            assert check_ucd(field.ucd, check_controlled_vocabulary=True), field.ucd
    # astropy names its columns by these: the names made XML identifiers.
    assert [field.ID for field in table.fields][:6] == [
        "path",
        "prediction",
        "class_index",
        "confidence",
        *[name.replace(" ", "_") for name in CLASS_NAMES[:2]],
    ]
    assert len({field.ID for field in table.fields}) == len(header)
    # Probabilities are written to four decimals, like the CSV.
    assert all(field.precision == "4" for field in table.fields if field.ucd == "stat.probability")


def test_rows_hold_the_csvs_values_and_failed_members_their_reason(catalogue_job, user_client):
    data = _votable_bytes(user_client, catalogue_job)
    table = _parse_strictly(data).get_first_table().to_table(use_names_over_ids=True)
    csv_rows = _csv_rows(user_client, catalogue_job)[1:]
    assert len(table) == len(csv_rows) == 3
    by_path = {row["path"]: row for row in table}
    for cells in csv_rows:
        row = by_path[cells[0]]
        if cells[-7] == "classified":  # status, error, then five catalogue columns
            assert row["prediction"] == cells[1]
            assert row["class_index"] == int(cells[2])
            assert f"{row['confidence']:.4f}" == cells[3]
            for position, name in enumerate(CLASS_NAMES, start=4):
                assert f"{row[name]:.4f}" == cells[position]
            assert abs(sum(row[name] for name in CLASS_NAMES) - 1) < 0.01
            assert row["in_distribution"] in (True, False)
    failed = by_path["notes.txt"]
    assert failed["status"] == "failed"
    assert failed["error"]
    assert failed["prediction"] == ""
    for name in ("class_index", "confidence", *CLASS_NAMES, "in_distribution", "ood_score"):
        assert np.ma.is_masked(failed[name]), name
    # The catalogue travels as written: numbers as numbers, text verbatim (no spreadsheet guard,
    # XML escaping instead).
    assert (failed["RA"], failed["Dec"], failed["id"]) == (12.125, -80.5, "N1")
    assert np.ma.is_masked(failed["redshift"])
    assert by_path["field/g0.png"]["comment"] == "<b>&amp; bold</b>"
    assert by_path["g1.png"]["id"] == "=HYPERLINK(1)"
    assert b"<b>" not in data
    # Written with four decimals, never the int8 steps.
    assert b"0.8622047244094488" not in data
    decimals = re.findall(rb"<TD>-?[0-9]+\.([0-9]+)</TD>", data)
    assert decimals
    assert max(len(digits) for digits in decimals) <= 4


def test_a_job_without_members_is_a_valid_empty_table(user, user_client):
    job = Job.objects.create(name="empty", user=user, status=Job.Status.SUCCEEDED)
    table = _parse_strictly(_votable_bytes(user_client, job)).get_first_table()
    assert [field.name for field in table.fields] == _csv_rows(user_client, job)[0]
    assert len(table.array) == 0


def test_a_job_whose_members_all_failed_is_valid(user, user_client, django_capture_on_commit_callbacks):
    job = _job(user, [("a.txt", b"text"), ("b.png", b"\x89PNG broken")], django_capture_on_commit_callbacks)
    assert (job.total, job.failed) == (2, 2)
    table = (
        _parse_strictly(_votable_bytes(user_client, job)).get_first_table().to_table(use_names_over_ids=True)
    )
    assert list(table["status"]) == ["failed", "failed"]
    assert all(table["error"])
    assert table["class_index"].mask.all()
    assert table["confidence"].mask.all()


def test_catalogue_columns_by_name_and_by_content(user, user_client, django_capture_on_commit_callbacks):
    """ra_deg/DEC_DEG are positions; sexagesimal RA stays text but keeps its UCD; a second RA is
    not the main one; names repeated or reused from the results stay distinct; integers are long."""
    image = distinct_images(1)[0]
    catalogue = (
        b"file,ra_deg,DEC_DEG,RAJ2000,status,objid,objid,hms\n"
        b"a.png,150.1,2.2,10:00:24,mine,123456789012,x,01:02:03\n"
    )
    job = _job(user, [("a.png", image), ("catalogue.csv", catalogue)], django_capture_on_commit_callbacks)
    table = _parse_strictly(_votable_bytes(user_client, job)).get_first_table()
    fields = {field.name: field for field in table.fields}
    assert (fields["ra_deg"].datatype, str(fields["ra_deg"].unit), fields["ra_deg"].ucd) == (
        "double",
        "deg",
        "pos.eq.ra;meta.main",
    )
    assert (fields["DEC_DEG"].datatype, fields["DEC_DEG"].ucd) == ("double", "pos.eq.dec;meta.main")
    assert (fields["RAJ2000"].datatype, fields["RAJ2000"].unit, fields["RAJ2000"].ucd) == (
        "unicodeChar",
        None,
        "pos.eq.ra",
    )
    names = [field.name for field in table.fields]
    assert names.count("status") == 1
    assert "status (2)" in names
    assert "objid (2)" in names
    assert fields["objid"].ucd == "meta.id"
    row = table.to_table(use_names_over_ids=True)[0]
    assert row["ra_deg"] == 150.1
    assert row["RAJ2000"] == "10:00:24"
    assert row["status (2)"] == "mine"
    # The same cells as the CSV's, in the same order, whatever the names (the Galaxy Zoo
    # answers come after the catalogue's columns).
    header, cells = _csv_rows(user_client, job)
    end = len(header) - len(GALAXY_ZOO_COLUMNS)
    assert header[end - 7 : end] == ["ra_deg", "DEC_DEG", "RAJ2000", "status", "objid", "objid", "hms"]
    assert [str(row[position]) for position in range(end - 7, end)] == cells[end - 7 : end]


def test_only_the_owner_and_staff_read_it(catalogue_job, other_user, anonymous_client, staff_client):
    url = reverse("api:job-results-votable", args=[catalogue_job.pk])
    assert staff_client.get(url).status_code == 200
    outsider = type(staff_client)()
    outsider.force_authenticate(other_user)
    response = outsider.get(url, HTTP_ACCEPT=VOTABLE_CONTENT_TYPE)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "No job with this id."}
    assert anonymous_client.get(url).status_code == 401


def test_asked_for_by_media_type(catalogue_job, user_client):
    _parse_strictly(_votable_bytes(user_client, catalogue_job, HTTP_ACCEPT=VOTABLE_CONTENT_TYPE))


def test_job_page_links_it(catalogue_job, client, user):
    client.force_login(user)
    page = client.get(catalogue_job.get_absolute_url()).content.decode()
    assert reverse("api:job-results-votable", args=[catalogue_job.pk]) in page


def test_a_catalogue_of_positions_keeps_its_columns_first_with_units_and_ucds(user_client, cutout_server):
    """A job made from positions alone (the stand-in cutout service on loopback): the catalogue's
    RA/Dec are the table's position even though one row's RA is not a number (a null there,
    its member failed and says why); the cutout URL is a link."""
    catalogue = "id,RA,dec,z\nG1,150.1,2.2,0.05\nNOIMG,10.0,-85.0,0.1\nBAD,ten,10.0,0.3\n"
    response = user_client.post(
        reverse("api:job-list"),
        {"catalogue": SimpleUploadedFile("targets.csv", catalogue.encode(), content_type="text/csv")},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    job = run_chunks_inline(Job.objects.get(pk=response.json()["id"]))
    assert job.by_position
    table = _parse_strictly(_votable_bytes(user_client, job)).get_first_table()
    header = _csv_rows(user_client, job)[0]
    assert [field.name for field in table.fields] == header
    assert header[:4] == ["id", "RA", "dec", "z"]
    fields = _fields(table)
    assert fields["id"] == ("unicodeChar", None, "meta.id")
    assert fields["RA"] == ("double", "deg", "pos.eq.ra;meta.main")
    assert fields["dec"] == ("double", "deg", "pos.eq.dec;meta.main")
    assert fields["z"] == ("double", None, None)
    assert fields["cutout_url"] == ("unicodeChar", None, "meta.ref.url")
    assert fields["confidence"] == PROBABILITY
    rows = {row["id"]: row for row in table.to_table(use_names_over_ids=True)}
    assert (rows["G1"]["RA"], rows["G1"]["dec"], rows["G1"]["status"]) == (150.1, 2.2, "classified")
    assert rows["G1"]["cutout_url"].startswith(cutout_server.base)
    assert rows["NOIMG"]["status"] == "failed"
    assert "no imaging" in rows["NOIMG"]["error"]
    assert np.ma.is_masked(rows["NOIMG"]["confidence"])
    assert np.ma.is_masked(rows["BAD"]["RA"])
    assert rows["BAD"]["dec"] == 10.0
    assert "ra is not a number" in rows["BAD"]["error"]
