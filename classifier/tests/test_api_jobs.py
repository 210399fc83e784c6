"""Following a job through the API: list, detail, results, cancel and delete, and who may do what."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Job, Prediction
from classifier.predictions.exports import GALAXY_ZOO_COLUMNS
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_user(django_user_model):
    """Another logged-in user: must not see the reader's jobs."""
    return django_user_model.objects.create_user(username="other", password="other-pass-123")


def _job(owner, entries, **kwargs) -> Job:
    submission = submission_from_uploads(archive=zip_upload(make_zip(entries)), **kwargs)
    return job_services.job_create(
        name=submission.name, members=submission.members, catalogue=submission.catalogue, user=owner
    )


@pytest.fixture
def finished_job(user, django_capture_on_commit_callbacks) -> Job:
    images = distinct_images(3)
    catalogue = b"file,id,ra,dec\nfield/g0.png,J001,10.5,-3.25\ng1.png,=HYPERLINK(1),11,4\n"
    entries = [("field/g0.png", images[0]), ("g1.png", images[1]), ("notes.txt", b"not an image")]
    with django_capture_on_commit_callbacks(execute=True):
        job = _job(user, [*entries, ("catalogue.csv", catalogue)])
        return run_chunks_inline(job)


def test_list_shows_own_jobs_and_staff_sees_all(user, other_user, user_client, staff_client):
    mine = _job(user, [("a.png", distinct_images(1)[0])])
    theirs = _job(other_user, [("b.png", distinct_images(1)[0])])
    ids = [job["id"] for job in user_client.get(reverse("api:job-list")).json()["results"]]
    assert ids == [mine.pk]
    ids = {job["id"] for job in staff_client.get(reverse("api:job-list")).json()["results"]}
    assert ids == {mine.pk, theirs.pk}


def test_anonymous_may_not_list(anonymous_client):
    assert anonymous_client.get(reverse("api:job-list")).status_code == 401


def test_detail_of_someone_elses_job_is_404(other_user, user_client):
    theirs = _job(other_user, [("b.png", distinct_images(1)[0])])
    response = user_client.get(reverse("api:job-detail", args=[theirs.pk]))
    assert response.status_code == 404


def test_detail_reports_progress_rate_model_and_class_counts(finished_job, user_client):
    body = user_client.get(reverse("api:job-detail", args=[finished_job.pk])).json()
    assert body["status"] == "succeeded"
    assert (body["total"], body["done"], body["failed"]) == (3, 2, 1)
    assert body["started_at"]
    assert body["finished_at"]
    assert body["model_version"]
    assert body["rate"] > 0
    assert sum(row["count"] for row in body["class_counts"]) == 2
    assert [row["name"] for row in body["class_counts"]] == list(CLASS_NAMES)
    assert body["catalogue_columns"] == ["id", "ra", "dec"]


def test_results_csv_has_classify_columns_status_and_catalogue(finished_job, user_client):
    response = user_client.get(reverse("api:job-results-csv", args=[finished_job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "path",
        "prediction",
        "class_index",
        "confidence",
        *CLASS_NAMES,
        "in_distribution",
        "ood_score",
        "single_band",
        "status",
        "error",
        "id",
        "ra",
        "dec",
        *GALAXY_ZOO_COLUMNS,
    ]
    # The Galaxy Zoo answers, last, are left out here (test_galaxy_zoo_exports checks them).
    by_path = {row[0]: row[: -len(GALAXY_ZOO_COLUMNS)] for row in rows[1:]}
    assert set(by_path) == {"field/g0.png", "g1.png", "notes.txt"}
    g0 = by_path["field/g0.png"]
    assert g0[1] in CLASS_NAMES
    assert abs(sum(float(p) for p in g0[4:14]) - 1) < 1e-4
    stored = Prediction.objects.get(job=finished_job, job_member__path="field/g0.png")
    assert g0[14:17] == [str(stored.in_distribution).lower(), f"{stored.ood_score:.3f}", "false"]
    assert g0[17:] == ["classified", "", "J001", "10.5", "-3.25"]
    # Catalogue matched by file name too; a formula-looking value is neutralised.
    assert by_path["g1.png"][-3] == "'=HYPERLINK(1)"
    notes = by_path["notes.txt"]
    assert notes[1:4] == ["", "", ""]
    assert notes[14:17] == ["", "", ""]
    assert notes[17] == "failed"
    assert "not a recognised image format" in notes[18]


def test_results_json_matches_the_audit_log(finished_job, user_client):
    response = user_client.get(reverse("api:job-results-json", args=[finished_job.pk]))
    import json

    records = json.loads(b"".join(response.streaming_content))
    classified = [r for r in records if r["status"] == "classified"]
    assert len(classified) == 2
    for record in classified:
        prediction = Prediction.objects.get(pk=record["prediction_id"])
        assert prediction.source == Prediction.Source.JOB
        assert prediction.job_id == finished_job.pk
        assert prediction.job_member.path == record["path"]
        assert record["class_index"] == prediction.class_index
        assert prediction.in_distribution is not None
        assert record["in_distribution"] == prediction.in_distribution
        assert record["ood_score"] == prediction.ood_score
        assert record["single_band"] is False
    assert records[0]["catalogue"] == {"id": "J001", "ra": "10.5", "dec": "-3.25"}


def test_running_a_chunk_twice_records_each_member_once(user, django_capture_on_commit_callbacks):
    job = _job(user, [(f"g{i}.png", data) for i, data in enumerate(distinct_images(4))])
    with django_capture_on_commit_callbacks(execute=True):
        run_chunks_inline(job)
        outcome = job_services.job_chunk_process(job_id=job.pk, start=0, stop=job.chunk_size)
    assert outcome.skipped
    assert Prediction.objects.filter(job=job).count() == 4


def test_cancel_stops_a_job_and_its_chunks_do_nothing(user, user_client):
    job = _job(user, [(f"g{i}.png", data) for i, data in enumerate(distinct_images(3))])
    response = user_client.post(reverse("api:job-cancel", args=[job.pk]))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    run_chunks_inline(job)
    assert Prediction.objects.filter(job=job).count() == 0
    again = user_client.post(reverse("api:job-cancel", args=[job.pk]))
    assert again.status_code == 409


def test_cancel_of_someone_elses_job_is_404(other_user, user_client):
    theirs = _job(other_user, [("b.png", distinct_images(1)[0])])
    assert user_client.post(reverse("api:job-cancel", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Job.Status.QUEUED


def test_only_staff_delete_and_predictions_and_images_go_with_the_job(
    finished_job, user_client, staff_client, media_root, django_capture_on_commit_callbacks
):
    url = reverse("api:job-detail", args=[finished_job.pk])
    assert user_client.delete(url).status_code == 403
    assert Prediction.objects.filter(job=finished_job).count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert staff_client.delete(url).status_code == 204
    assert not Job.objects.filter(pk=finished_job.pk).exists()
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_job_predictions_are_in_the_audit_log_api(finished_job, user_client):
    response = user_client.get(reverse("api:prediction-list"), {"source": "job"})
    assert response.status_code == 200
    assert response.json()["count"] == 2
