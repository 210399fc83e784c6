"""A job's files and predictions are seen by whoever may see the job (issue 21, items 4 and 12).

- owner: submitted the job; sees its predictions everywhere the audit log shows them;
- other: another logged-in user; sees the shared audit log, but none of the owner's job
  predictions, and a job prediction's id answers as an id that does not exist;
- staff: sees every job and every prediction (the admin is staff-only);
- anonymous: sees nothing of a job.

A job's staged chunks (jobs/<id>/NNNNNNN.zip under MEDIA_ROOT) are served to nobody, the
owner included, and are deleted whenever the job ends, however it ends.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from classifier.jobs import services as job_services
from classifier.models import Job, JobMember, Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.jobs_support import (
    distinct_images,
    make_zip,
    run_chunks_inline,
    wait_until_ended,
    zip_upload,
)
from classifier.tests.test_fits import cube_file
from classifier.tests.workers import Worker

pytestmark = pytest.mark.django_db

SECRET_NAMES = [f"secret-field/target-{i}.png" for i in range(3)]
SECRET_FITS = "secret-field/cube.fits"


@pytest.fixture
def owner(django_user_model):
    """Submits the job."""
    return django_user_model.objects.create_user(username="owner", password="owner-pass-123")


@pytest.fixture
def other(django_user_model):
    """Another logged-in user: must see nothing of the owner's job."""
    return django_user_model.objects.create_user(username="other", password="other-pass-123")


def api_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def page_client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def submit(user, entries) -> Job:
    """A job submitted through the API, as its owner would."""
    response = api_client(user).post(
        reverse("api:job-list"), {"archive": zip_upload(make_zip(entries))}, format="multipart"
    )
    assert response.status_code == 202, response.content
    return Job.objects.get(pk=response.json()["id"])


def page_text(response) -> str:
    """The page without what differs on every response (the masked CSRF token, the CSP nonce)."""
    return re.sub(r'(value|nonce)="[^"]*"', "", response.content.decode())


def staged_files(media_root) -> list[str]:
    folder = media_root / "jobs"
    return sorted(p.relative_to(media_root).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def secret_job(owner, django_capture_on_commit_callbacks) -> Job:
    """The owner's finished job: three PNGs and a FITS cube, all classified."""
    entries = [*zip(SECRET_NAMES, distinct_images(3), strict=True), (SECRET_FITS, cube_file())]
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(submit(owner, entries))
    assert job.status == Job.Status.SUCCEEDED
    assert job.done == 4
    return job


# --- Staged files (item 4) ------------------------------------------------------------------


def test_a_staged_chunk_is_served_to_nobody(owner, other, staff, media_root):
    job = submit(owner, [(name, data) for name, data in zip(SECRET_NAMES, distinct_images(3), strict=True)])
    [name] = staged_files(media_root)
    assert name == f"jobs/{job.pk}/0000000.zip"  # the file the attack read is there
    for reader in (other, owner, staff, None):
        client = page_client(reader)
        for path in (
            f"/media/{name}",
            f"/media/jobs/{job.pk}/./0000000.zip",
            f"/media/jobs/{job.pk + 1}/../{job.pk}/0000000.zip",
            f"/media/predictions/../{name}",
        ):
            response = client.get(path)
            assert response.status_code == 404, (reader, path)
            body = b"".join(getattr(response, "streaming_content", [response.content]))
            assert b"PK\x03\x04" not in body


def test_a_job_id_that_is_not_yours_answers_as_one_that_does_not_exist(owner, other, media_root):
    job = submit(owner, [("a.png", distinct_images(1)[0])])
    client = page_client(other)
    there = client.get(f"/media/jobs/{job.pk}/0000000.zip")
    absent = client.get(f"/media/jobs/{job.pk + 1000}/0000000.zip")
    assert there.status_code == absent.status_code == 404
    assert page_text(there) == page_text(absent)


def _succeed(job: Job) -> None:
    run_chunks_inline(job)


def _fail_every_member(job: Job) -> None:
    run_chunks_inline(job)  # the members are not images: the job ends failed


def _give_up(job: Job) -> None:
    # What the worker does after JOB_MAX_RETRIES failed tries (classifier.jobs.tasks.fail_job).
    job_services.job_fail(job_id=job.pk, reason="gave up on a chunk after 5 retries")


def _cancel_through_the_api(job: Job) -> None:
    response = api_client(job.user).post(reverse("api:job-cancel", args=[job.pk]))
    assert response.status_code in {200, 202}, response.content


def _cancel_half_way(job: Job) -> None:
    job_services.job_chunk_process(job_id=job.pk, start=0, stop=job.chunk_size)
    _cancel_through_the_api(job)


def _delete_as_staff(job: Job) -> None:
    staff = type(job.user).objects.create_user(username="boss", password="boss-pass-123", is_staff=True)
    response = api_client(staff).delete(reverse("api:job-detail", args=[job.pk]))
    assert response.status_code == 204, response.content


@pytest.mark.parametrize(
    "case",
    [
        (_succeed, True, Job.Status.SUCCEEDED),
        (_fail_every_member, False, Job.Status.FAILED),
        (_give_up, True, Job.Status.FAILED),
        (_cancel_through_the_api, True, Job.Status.CANCELLED),
        (_cancel_half_way, True, Job.Status.CANCELLED),
        (_delete_as_staff, True, None),
    ],
    ids=["succeeded", "every-member-failed", "worker-gave-up", "cancelled", "cancelled-half-way", "deleted"],
)
def test_every_end_deletes_every_staged_file(
    case, owner, media_root, settings, django_capture_on_commit_callbacks
):
    end, images, status = case
    settings.JOB_CHUNK_SIZE = 2
    contents = distinct_images(5) if images else [b"not an image %d" % i for i in range(5)]
    # Named .png either way: members that are not images are refused when their chunk runs.
    with django_capture_on_commit_callbacks(execute=True):
        job = submit(owner, [(f"g{i}.png", data) for i, data in enumerate(contents)])
    assert len(staged_files(media_root)) == 3
    # A file left in the job's staging folder that no member names (a chunk whose members
    # could not be recorded) goes too.
    default_storage.save(f"jobs/{job.pk}/stray.zip", ContentFile(b"PK\x05\x06" + bytes(18)))

    with django_capture_on_commit_callbacks(execute=True):
        end(job)

    assert staged_files(media_root) == []
    assert not (media_root / "jobs" / str(job.pk)).exists()
    if status is None:
        assert not Job.objects.filter(pk=job.pk).exists()
        return
    job.refresh_from_db()
    assert job.status == status
    # The job still reports in full without its staged files.
    client = api_client(owner)
    detail = client.get(reverse("api:job-detail", args=[job.pk]))
    assert detail.status_code == 200
    assert detail.json()["status"] == status
    results = client.get(reverse("api:job-results-csv", args=[job.pk]))
    assert results.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(results.streaming_content).decode())))
    assert [row["path"] for row in rows] == [f"g{i}.png" for i in range(5)]
    assert page_client(owner).get(reverse("classifier:job-detail", args=[job.pk])).status_code == 200


def test_a_job_whose_staged_file_is_gone_ends_with_each_members_reason(
    owner, media_root, settings, django_capture_on_commit_callbacks
):
    settings.JOB_CHUNK_SIZE = 2
    with django_capture_on_commit_callbacks(execute=True):
        job = submit(owner, [(f"g{i}.png", data) for i, data in enumerate(distinct_images(4))])
    lost = f"jobs/{job.pk}/0000000.zip"
    default_storage.delete(lost)  # the storage lost the first chunk

    with django_capture_on_commit_callbacks(execute=True):
        outcome = job_services.job_chunk_process(job_id=job.pk, start=0, stop=2)
        job = run_chunks_inline(job)

    assert outcome.failed == 2
    assert job.status == Job.Status.SUCCEEDED
    assert (job.done, job.failed) == (2, 2)
    members = {m.path: m for m in JobMember.objects.filter(job=job)}
    for path in ("g0.png", "g1.png"):
        assert members[path].status == JobMember.Status.FAILED
        assert members[path].error == job_services.STAGED_FILE_GONE_REASON
    assert staged_files(media_root) == []
    body = api_client(owner).get(reverse("api:job-results-json", args=[job.pk]))
    records = json.loads(b"".join(body.streaming_content))
    assert [r["error"] for r in records[:2]] == [job_services.STAGED_FILE_GONE_REASON] * 2


def test_a_chunk_delivered_again_after_the_job_ended_changes_nothing(
    secret_job, django_capture_on_commit_callbacks
):
    before = list(JobMember.objects.filter(job=secret_job).values_list("status", "error"))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = job_services.job_chunk_process(job_id=secret_job.pk, start=0, stop=secret_job.chunk_size)
    assert outcome.skipped
    assert list(JobMember.objects.filter(job=secret_job).values_list("status", "error")) == before


# --- The audit log follows the job (item 12) -------------------------------------------------


def _job_predictions(job: Job) -> list[Prediction]:
    return list(Prediction.objects.filter(job=job).order_by("pk"))


def test_the_api_list_shows_other_users_none_of_a_jobs_predictions(secret_job, owner, other, staff):
    shared = PredictionFactory(original_filename="shared-upload.png")  # the shared log stays shared
    secret_ids = {p.pk for p in _job_predictions(secret_job)}
    url = reverse("api:prediction-list")
    for query in ({}, {"source": "job"}, {"filename": "target"}):
        seen = {r["id"] for r in api_client(other).get(url, query).json()["results"]}
        assert not seen & secret_ids, query
        assert api_client(owner).get(url, {"source": "job"}).json()["count"] == 4
    assert shared.pk in {r["id"] for r in api_client(other).get(url).json()["results"]}
    owner_sees = {r["id"] for r in api_client(owner).get(url).json()["results"]}
    assert secret_ids | {shared.pk} <= owner_sees
    staff_sees = {r["id"] for r in api_client(staff).get(url, {"source": "job"}).json()["results"]}
    assert staff_sees == secret_ids
    assert api_client().get(url, {"source": "job"}).status_code == 401


def test_the_api_csv_export_leaves_them_out(secret_job, owner, other):
    url = reverse("api:prediction-list")
    body = api_client(other).get(url, {"format": "csv"}).content.decode()
    assert not any(name.rsplit("/", 1)[-1] in body for name in [*SECRET_NAMES, SECRET_FITS])
    rows = list(csv.DictReader(io.StringIO(api_client(owner).get(url, {"format": "csv"}).content.decode())))
    assert {row["source"] for row in rows} == {"job"}
    assert len(rows) == 4


def test_a_job_prediction_id_answers_as_one_that_does_not_exist(secret_job, other, owner, staff):
    missing = Prediction.objects.order_by("-pk").first().pk + 1000
    for prediction in _job_predictions(secret_job):
        detail = reverse("api:prediction-detail", args=[prediction.pk])
        there = api_client(other).get(detail)
        absent = api_client(other).get(reverse("api:prediction-detail", args=[missing]))
        assert there.status_code == absent.status_code == 404
        assert there.json() == absent.json()
        assert api_client(owner).get(detail).status_code == 200
        assert api_client(staff).get(detail).status_code == 200

        page = prediction.get_absolute_url()
        there = page_client(other).get(page)
        absent = page_client(other).get(f"/predictions/{missing}/")
        assert there.status_code == absent.status_code == 404
        assert page_text(there).replace(page, "") == page_text(absent).replace(f"/predictions/{missing}/", "")
        assert page_client(owner).get(page).status_code == 200
        assert page_client(staff).get(page).status_code == 200
        # Anonymous visitors get the login page for any id, as for an id that does not exist.
        anonymous = page_client().get(page)
        assert anonymous.status_code == 302
        assert page_client().get(f"/predictions/{missing}/").status_code == 302


def test_their_images_and_previews_are_served_to_the_owner_and_staff_only(secret_job, owner, other, staff):
    for prediction in _job_predictions(secret_job):
        image = f"/media/{prediction.image.name}"
        assert page_client(owner).get(image).status_code == 200
        assert page_client(staff).get(image).status_code == 200
        assert page_client(other).get(image).status_code == 404
        assert page_client().get(image).status_code == 404
    [fits_prediction] = [p for p in _job_predictions(secret_job) if p.is_fits]
    preview = reverse("classifier:prediction-preview", args=[fits_prediction.pk])
    assert page_client(owner).get(preview).status_code == 200
    assert page_client(other).get(preview).status_code == 404
    assert page_client().get(preview).status_code == 404


def test_the_history_page_and_its_csv_leave_them_out(secret_job, owner, other):
    PredictionFactory(original_filename="shared-upload.png")
    for query in ({}, {"source": "job"}, {"filename": "target"}):
        html = page_client(other).get(reverse("classifier:history"), query).content.decode()
        exported = page_client(other).get(reverse("classifier:history-csv"), query).content.decode()
        for name in [*SECRET_NAMES, SECRET_FITS]:
            assert name.rsplit("/", 1)[-1] not in html, query
            assert name.rsplit("/", 1)[-1] not in exported, query
    html = page_client(other).get(reverse("classifier:history")).content.decode()
    assert "shared-upload.png" in html
    html = page_client(owner).get(reverse("classifier:history"), {"source": "job"}).content.decode()
    assert all(name.rsplit("/", 1)[-1] in html for name in SECRET_NAMES)


def test_the_results_page_and_its_downloads_leave_them_out(secret_job, owner, other):
    ids = ",".join(str(p.pk) for p in _job_predictions(secret_job))
    for name, reader, expected in (("other", other, 0), ("owner", owner, 4)):
        client = page_client(reader)
        html = client.get(reverse("classifier:results"), {"ids": ids}).content.decode()
        assert ("target-0.png" in html) == bool(expected), name
        rows = list(
            csv.DictReader(
                io.StringIO(client.get(reverse("classifier:results-csv"), {"ids": ids}).content.decode())
            )
        )
        assert len(rows) == expected, name
        records = client.get(reverse("classifier:results-json"), {"ids": ids}).json()
        assert len(records) == expected, name
    # Anonymous visitors see none either: they are sent to log in.
    assert page_client().get(reverse("classifier:results-csv"), {"ids": ids}).status_code == 302


def test_a_users_own_job_predictions_follow_them_and_not_the_others(secret_job, other, staff):
    """Both users have jobs: each sees their own, staff see both."""
    with_other_job = submit(other, [("mine.png", distinct_images(1)[0])])
    run_chunks_inline(with_other_job)
    url = reverse("api:prediction-list")
    mine = {r["id"] for r in api_client(other).get(url, {"source": "job"}).json()["results"]}
    assert mine == {p.pk for p in _job_predictions(with_other_job)}
    everyone = {r["id"] for r in api_client(staff).get(url, {"source": "job"}).json()["results"]}
    assert everyone == mine | {p.pk for p in _job_predictions(secret_job)}


def test_the_admin_is_staff_only_and_shows_all(secret_job, other, staff):
    changelist = reverse("admin:classifier_prediction_changelist")
    assert page_client(other).get(changelist).status_code == 302
    html = page_client(staff).get(changelist, {"source__exact": "job"}).content.decode()
    assert "target-0.png" in html


# --- The same on a real worker ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_job_run_by_a_real_worker_leaves_no_staged_file(  # noqa: PLR0917 - fixtures
    owner, other, media_root, redis_celery, settings, tmp_path
):
    settings.JOB_CHUNK_SIZE = 2
    # Queued before the worker starts: the staged chunks are there, and served to nobody.
    job = submit(owner, [(f"g{i}.png", data) for i, data in enumerate(distinct_images(5))])
    assert len(staged_files(media_root)) == 3
    for reader in (other, owner):
        assert page_client(reader).get(f"/media/jobs/{job.pk}/0000000.zip").status_code == 404
    worker = Worker(name="staged", broker_url=redis_celery, log_dir=tmp_path)
    try:
        worker.wait_ready()
        wait_until_ended(job)
    finally:
        worker.stop()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.done == 5
    assert staged_files(media_root) == []
    assert not (media_root / "jobs" / str(job.pk)).exists()
    ids = {p.pk for p in _job_predictions(job)}
    url = reverse("api:prediction-list")
    assert not ids & {r["id"] for r in api_client(other).get(url, {"source": "job"}).json()["results"]}
    assert ids == {r["id"] for r in api_client(owner).get(url, {"source": "job"}).json()["results"]}
