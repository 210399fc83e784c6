"""POST /api/jobs/: who may submit, what is accepted, and every refusal (nothing saved)."""

from __future__ import annotations

import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from django.urls import reverse

from classifier.models import Job, JobMember, Prediction
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db

URL = reverse("api:job-list")


def _post(client, **files):
    return client.post(URL, files, format="multipart")


def _nothing_saved(media_root) -> None:
    assert Job.objects.count() == 0
    assert JobMember.objects.count() == 0
    assert media_files(media_root) == []


def test_anonymous_may_not_submit(anonymous_client, media_root):
    response = _post(anonymous_client, archive=zip_upload(make_zip([("a.png", distinct_images(1)[0])])))
    assert response.status_code == 401
    _nothing_saved(media_root)


def test_archive_is_accepted_with_202_and_queued(user_client, user, media_root):
    images = distinct_images(5)
    archive = make_zip([(f"field-{i % 2}/g{i}.png", data) for i, data in enumerate(images)])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["total"] == 5
    assert body["url"].endswith(reverse("api:job-detail", args=[body["id"]]))
    assert response["Location"] == body["url"]
    job = Job.objects.get(pk=body["id"])
    assert job.user == user
    paths = list(job.members.values_list("path", flat=True))
    assert paths == [f"field-{i % 2}/g{i}.png" for i in range(5)]
    # Staged through the storage API, one file per chunk holding each member's bytes.
    [staged] = media_files(media_root)
    assert set(job.members.values_list("staged_name", flat=True)) == {
        staged.relative_to(media_root).as_posix()
    }
    with zipfile.ZipFile(staged) as bundle:
        assert [bundle.read(f"{i:07d}") for i in range(5)] == images


def test_each_chunk_is_staged_in_a_file_of_its_own(
    user_client, media_root, settings, django_capture_on_commit_callbacks
):
    settings.JOB_CHUNK_SIZE = 2
    images = distinct_images(5)
    response = _post(
        user_client, archive=zip_upload(make_zip([(f"g{i}.png", d) for i, d in enumerate(images)]))
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    names = list(job.members.order_by("index").values_list("staged_name", flat=True))
    assert len(set(names)) == 3
    assert names[0] == names[1] != names[2] == names[3] != names[4]
    assert len(media_files(media_root)) == 3
    # The worker reads each member back from its chunk, then deletes the chunk.
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(job)
    assert job.status == Job.Status.SUCCEEDED
    assert job.done == 5
    assert not (media_root / "jobs").exists() or not [
        p for p in (media_root / "jobs").rglob("*") if p.is_file()
    ]
    stored = {p.name for p in media_files(media_root / "predictions")}
    assert len(stored) == 5


def test_image_fields_are_accepted(user_client):
    files = [SimpleUploadedFile(f"g{i}.png", data) for i, data in enumerate(distinct_images(3))]
    response = _post(user_client, image=files)
    assert response.status_code == 202, response.content
    assert response.json()["total"] == 3


def test_archive_over_the_size_limit_is_413(user_client, settings, media_root):
    archive = make_zip([("a.png", distinct_images(1)[0])])
    settings.JOB_MAX_ARCHIVE_BYTES = len(archive) - 1
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 413
    assert "more than the limit" in response.json()["reason"]
    _nothing_saved(media_root)


def test_request_over_the_archive_limit_is_413_before_it_is_read(user_client, settings, media_root):
    archive = make_zip([("a.png", distinct_images(1)[0])])
    settings.JOB_MAX_ARCHIVE_BYTES = 10
    settings.MAX_REQUEST_BYTES = 10
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 413
    _nothing_saved(media_root)


def test_zip_bomb_by_ratio_is_refused(user_client, media_root):
    # 20 MB of zeros compress to about 20 kB: a ratio near 1000:1.
    archive = make_zip([("a.png", distinct_images(1)[0]), ("bomb.png", b"\0" * 20_000_000)])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 400
    assert "zip bomb" in response.json()["reason"]
    _nothing_saved(media_root)


def test_zip_bomb_by_total_size_is_refused(user_client, settings, media_root):
    settings.JOB_MAX_UNCOMPRESSED_BYTES = 100_000
    archive = make_zip([(f"g{i}.bin", bytes(range(256)) * 200) for i in range(3)])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 413
    assert "would expand to" in response.json()["reason"]
    _nothing_saved(media_root)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/passwd.png", "absolute path"),
        ("C:/galaxy.png", "absolute path"),
        ("../outside.png", "outside the archive"),
        ("field/../../outside.png", "outside the archive"),
        ("field\\..\\..\\outside.png", "outside the archive"),
        ("a" * 600 + ".png", "longer than 500"),
    ],
)
def test_unsafe_member_paths_refuse_the_archive(user_client, media_root, name, reason):
    archive = make_zip([("ok.png", distinct_images(1)[0]), (name, distinct_images(2)[1])])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 400
    assert reason in response.json()["reason"]
    _nothing_saved(media_root)


def test_links_refuse_the_archive(user_client, media_root):
    archive = make_zip([("ok.png", distinct_images(1)[0])], links=[("link.png", "/etc/passwd")])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 400
    assert "is a link" in response.json()["reason"]
    _nothing_saved(media_root)


def test_empty_archive_is_400(user_client, media_root):
    response = _post(user_client, archive=zip_upload(make_zip([])))
    assert response.status_code == 400
    assert "no files" in response.json()["reason"]
    _nothing_saved(media_root)


def test_archive_of_folders_only_is_400(user_client, media_root):
    response = _post(user_client, archive=zip_upload(make_zip([("empty/", b""), ("__MACOSX/._a.png", b"x")])))
    assert response.status_code == 400
    _nothing_saved(media_root)


def test_not_a_zip_is_400(user_client, media_root):
    response = _post(user_client, archive=zip_upload(b"this is not a zip file", name="fake.zip"))
    assert response.status_code == 400
    assert "not a readable .zip" in response.json()["reason"]
    _nothing_saved(media_root)


def test_no_file_is_400(user_client, media_root):
    response = user_client.post(URL, {}, format="multipart")
    assert response.status_code == 400
    _nothing_saved(media_root)


def test_archive_and_images_together_are_400(user_client, media_root):
    image = SimpleUploadedFile("g.png", distinct_images(1)[0])
    response = _post(user_client, archive=zip_upload(make_zip([("a.png", b"x")])), image=[image])
    assert response.status_code == 400
    _nothing_saved(media_root)


def test_unexpected_file_field_is_400(user_client, media_root):
    response = _post(user_client, photos=SimpleUploadedFile("g.png", distinct_images(1)[0]))
    assert response.status_code == 400
    assert "photos" in response.json()["reason"]
    _nothing_saved(media_root)


def test_duplicate_member_paths_are_400(user_client, media_root):
    images = distinct_images(2)
    files = [SimpleUploadedFile("g.png", images[0]), SimpleUploadedFile("g.png", images[1])]
    response = _post(user_client, image=files)
    assert response.status_code == 400
    assert "appears twice" in response.json()["reason"]
    _nothing_saved(media_root)


def test_nested_archives_non_images_and_corrupt_images_fail_alone(
    user_client, media_root, django_capture_on_commit_callbacks
):
    images = distinct_images(2)
    inner = make_zip([("inner.png", images[0])])
    archive = make_zip(
        [
            ("good/a.png", images[0]),
            ("good/b.png", images[1]),
            ("nested.zip", inner),
            ("disguised.png", inner),
            ("notes.txt", b"observing log, not an image"),
            ("broken.png", images[1][:40]),
            ("empty.png", b""),
        ]
    )
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 202, response.content
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(Job.objects.get(pk=response.json()["id"]))
    assert job.status == Job.Status.SUCCEEDED
    assert (job.total, job.done, job.failed) == (7, 2, 5)
    reasons = dict(job.members.filter(status=JobMember.Status.FAILED).values_list("path", "error"))
    assert set(reasons) == {"nested.zip", "disguised.png", "notes.txt", "broken.png", "empty.png"}
    assert "nested archives" in reasons["nested.zip"]
    assert "nested archives" in reasons["disguised.png"]
    assert "not a recognised image format" in reasons["notes.txt"]
    assert reasons["empty.png"] == "the file is empty"
    assert reasons["broken.png"]
    assert Prediction.objects.filter(job=job).count() == 2
    # Staged copies are removed once their members are done; the predictions keep the images.
    assert all(path.parts[-3] == "predictions" for path in media_files(media_root))


def test_member_over_the_per_file_limit_fails_alone(user_client, settings):
    small, image = distinct_images(2, size=(200, 200))
    settings.MAX_UPLOAD_BYTES = max(len(small), len(image)) + 10
    big = image + b"\0" * 100
    archive = make_zip([("a.png", small), ("big.png", big)], compression=zipfile.ZIP_STORED)
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 202
    job = run_chunks_inline(Job.objects.get(pk=response.json()["id"]))
    assert (job.done, job.failed) == (1, 1)
    assert "larger than the limit" in job.members.get(path="big.png").error


def test_corrupt_member_data_fails_alone(user_client):
    images = distinct_images(2)
    archive = bytearray(
        make_zip([("a.png", images[0]), ("b.png", images[1])], compression=zipfile.ZIP_STORED)
    )
    # Flip a byte inside the second member's data: its CRC no longer matches.
    offset = bytes(archive).index(images[1]) + 50
    archive[offset] ^= 0xFF
    response = _post(user_client, archive=zip_upload(bytes(archive)))
    assert response.status_code == 202, response.content
    job = run_chunks_inline(Job.objects.get(pk=response.json()["id"]))
    assert (job.done, job.failed) == (1, 1)
    assert "corrupt" in job.members.get(path="b.png").error


def test_only_failed_members_end_the_job_as_failed_at_once(user_client):
    response = _post(user_client, archive=zip_upload(make_zip([("nested.zip", make_zip([]))])))
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == Job.Status.FAILED
    assert job.error


def test_archive_may_be_larger_than_a_classify_request(user_client, settings):
    archive = make_zip([("a.png", distinct_images(1)[0])], compression=zipfile.ZIP_STORED)
    settings.MAX_REQUEST_BYTES = 100
    settings.JOB_MAX_ARCHIVE_BYTES = len(archive) + 10
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 202, response.content


def test_storage_failure_while_staging_is_503_and_the_job_failed_with_its_reason(
    user_client, settings, tmp_path
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker / "media"
    archive = make_zip([(f"g{i}.png", data) for i, data in enumerate(distinct_images(3))])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 503
    assert "media storage failed" in response.json()["reason"]
    job = Job.objects.get()
    assert job.status == Job.Status.FAILED
    assert "media storage failed" in job.error
    assert job.members.count() == 0


def test_database_failure_while_staging_leaves_no_staged_chunk(
    user_client, media_root, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # The second chunk's member rows cannot be written: its staged file is named by no row,
    # so it is removed at once; the first chunk's goes with the failed job.
    settings.JOB_CHUNK_SIZE = 2
    real_bulk_create = JobMember.objects.bulk_create
    calls = []

    def failing_bulk_create(rows, *args, **kwargs):
        calls.append(len(rows))
        if len(calls) == 2:
            raise DatabaseError("the database went away")
        return real_bulk_create(rows, *args, **kwargs)

    monkeypatch.setattr(JobMember.objects, "bulk_create", failing_bulk_create)
    archive = make_zip([(f"g{i}.png", data) for i, data in enumerate(distinct_images(5))])
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 503
    assert "database failed" in response.json()["reason"]
    job = Job.objects.get()
    assert job.status == Job.Status.FAILED
    assert calls == [2, 2]
    assert media_files(media_root) == []


def test_chunks_staged_one_file_per_member_before_bundling_still_run(
    user_client, media_root, django_capture_on_commit_callbacks
):
    # A job queued by the previous release, which staged each member in a file of its own.
    images = distinct_images(3)
    response = _post(
        user_client, archive=zip_upload(make_zip([(f"g{i}.png", d) for i, d in enumerate(images)]))
    )
    job = Job.objects.get(pk=response.json()["id"])
    [bundle] = media_files(media_root)
    bundle.unlink()
    for member, data in zip(job.members.order_by("index"), images, strict=True):
        name = f"jobs/{job.pk}/{member.index:07d}"
        (media_root / name).write_bytes(data)
        member.staged_name = name
        member.save(update_fields=["staged_name"])
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(job)
    assert (job.status, job.done) == (Job.Status.SUCCEEDED, 3)
    assert sorted(Prediction.objects.filter(job=job).values_list("width", flat=True)) == [96, 96, 96]
    assert not [p for p in (media_root / "jobs").rglob("*") if p.is_file()]
