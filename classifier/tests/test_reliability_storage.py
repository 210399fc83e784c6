"""Saving is atomic and shared image files survive concurrent deletes.

These tests commit for real (transactional database) and use several threads,
each with its own database connection, so the locks involved are the real ones.
"""

import threading
import time

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.http.multipartparser import MultiPartParser
from django.urls import reverse

from classifier.models import Prediction
from classifier.predictions import services, storage
from classifier.tests.utils import in_thread, make_image_bytes, media_files

pytestmark = pytest.mark.django_db(transaction=True)

URL = reverse("api:prediction-list")
PAUSE_S = 0.5


def create(content, name):
    return services.prediction_create_batch(
        uploads=[SimpleUploadedFile(name, content)], source=Prediction.Source.API
    )


def test_deleting_the_last_record_while_an_identical_upload_commits(monkeypatch, media_root):
    """The upload has checked that the shared file exists and inserted its row, not yet committed;
    the delete of the only committed row must not remove the file from under it."""
    content = make_image_bytes(color=(9, 99, 199))
    [first] = create(content, "first.png")
    stored = media_root / first.image.name
    row_saved, release_upload = threading.Event(), threading.Event()
    original_bulk_create = QuerySet.bulk_create

    def pausing_bulk_create(self, *args, **kwargs):
        created = original_bulk_create(self, *args, **kwargs)
        if threading.current_thread().name == "upload":
            row_saved.set()
            release_upload.wait(10)
        return created

    monkeypatch.setattr(QuerySet, "bulk_create", pausing_bulk_create)
    results = {}
    upload = in_thread(lambda: create(content, "again.png"), results, "upload")
    assert row_saved.wait(10)
    delete = in_thread(lambda: services.prediction_delete(prediction=first), results, "delete")
    time.sleep(PAUSE_S)
    delete_waited = delete.is_alive()
    release_upload.set()
    upload.join(10)
    delete.join(10)

    [again] = results["upload"]
    assert results["delete"] is None
    assert list(Prediction.objects.values_list("pk", flat=True)) == [again.pk]
    assert again.image.name == first.image.name
    assert stored.is_file(), "the delete removed the file that the new row refers to"
    assert stored.read_bytes() == content
    assert delete_waited, "the delete did not wait for the upload that shares its file"


def test_identical_upload_while_the_last_record_is_being_deleted(monkeypatch, media_root):
    """The delete has found no row referring to the file and is about to remove it; the
    identical upload must wait, then store the file again rather than refer to a dead one."""
    content = make_image_bytes(color=(7, 77, 177))
    [first] = create(content, "first.png")
    stored = media_root / first.image.name
    about_to_delete, release_delete = threading.Event(), threading.Event()
    original_delete = storage._delete_file_quietly

    def pausing_delete(name):
        if threading.current_thread().name == "delete":
            about_to_delete.set()
            release_delete.wait(10)
        original_delete(name)

    monkeypatch.setattr(storage, "_delete_file_quietly", pausing_delete)
    results = {}
    delete = in_thread(lambda: services.prediction_delete(prediction=first), results, "delete")
    assert about_to_delete.wait(10)
    upload = in_thread(lambda: create(content, "again.png"), results, "upload")
    time.sleep(PAUSE_S)
    upload_waited = upload.is_alive()
    release_delete.set()
    delete.join(10)
    upload.join(10)

    assert results["delete"] is None
    [again] = results["upload"]
    assert list(Prediction.objects.values_list("pk", flat=True)) == [again.pk]
    assert again.image.name == first.image.name
    assert stored.is_file(), "the new row refers to a file that the delete removed"
    assert stored.read_bytes() == content
    assert upload_waited, "the upload did not wait for the delete of its shared file"


def test_failure_at_commit_removes_the_written_file(monkeypatch, anonymous_client, media_root):
    real_commit = connection.commit
    calls = {"n": 0}

    def commit_fails_once():
        calls["n"] += 1
        if calls["n"] == 1:
            raise DatabaseError("simulated failure while committing")
        real_commit()

    monkeypatch.setattr(connection, "commit", commit_fails_once)
    response = anonymous_client.post(
        URL, {"image": [SimpleUploadedFile("g.png", make_image_bytes())]}, format="multipart"
    )

    assert response.status_code == 503, response.content
    assert response.json()["reason"] == "the database is unavailable, nothing was saved"
    assert calls["n"] >= 1
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_storage_failing_half_way_through_a_file_leaves_nothing(monkeypatch, anonymous_client, media_root):
    real_save = FileSystemStorage._save

    def save_half_then_fail(self, name, content):
        data = content.read()
        real_save(self, name, SimpleUploadedFile(name, data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", save_half_then_fail)
    files = [SimpleUploadedFile("g.png", make_image_bytes(size=(300, 200)))]
    response = anonymous_client.post(URL, {"image": files}, format="multipart")

    assert response.status_code == 503
    assert response.json()["reason"] == "the media storage is unavailable, nothing was saved"
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_failure_after_the_first_file_of_a_batch_removes_it(monkeypatch, anonymous_client, media_root):
    real_save = FileSystemStorage._save
    calls = {"n": 0}

    def second_save_fails(self, name, content):
        calls["n"] += 1
        if calls["n"] == 2:
            raise PermissionError(13, "Permission denied")
        return real_save(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", second_save_fails)
    files = [SimpleUploadedFile(f"g{i}.png", make_image_bytes(color=(i, i, i))) for i in range(3)]
    response = anonymous_client.post(URL, {"image": files}, format="multipart")

    assert response.status_code == 503
    assert calls["n"] == 2
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


class TestWholeRequestCap:
    """A request body over MAX_REQUEST_BYTES is refused from its Content-Length, unread."""

    @pytest.fixture(autouse=True)
    def _parsing_is_an_error(self, monkeypatch):
        def parse(self):
            raise AssertionError("an oversized body was parsed")

        self.real_parse = MultiPartParser.parse
        monkeypatch.setattr(MultiPartParser, "parse", parse)

    def test_default_cap_fits_a_full_batch(self, settings):
        assert settings.MAX_REQUEST_BYTES >= settings.MAX_UPLOAD_BYTES * settings.MAX_FILES_PER_REQUEST

    def test_api_gets_413_json_and_nothing_is_written(self, settings, anonymous_client, media_root):
        settings.MAX_REQUEST_BYTES = 10_000
        files = [
            SimpleUploadedFile(f"g{i}.bmp", make_image_bytes(fmt="BMP", size=(40, 40))) for i in range(3)
        ]
        response = anonymous_client.post(URL, {"image": files}, format="multipart")

        assert response.status_code == 413
        body = response.json()
        assert body["detail"] == "the request is too large, nothing was saved"
        assert "more than the limit of 10,000 bytes" in body["reason"]
        assert Prediction.objects.count() == 0
        assert media_files(media_root) == []

    def test_a_lying_content_length_is_judged_by_what_it_declares(self, settings, client):
        settings.MAX_REQUEST_BYTES = 1_000
        response = client.generic(
            "POST", URL, b"x", content_type="multipart/form-data; boundary=b", CONTENT_LENGTH="5000000"
        )
        assert response.status_code == 413

    def test_pages_get_a_413_page(self, settings, client):
        settings.MAX_REQUEST_BYTES = 1_000
        files = [SimpleUploadedFile("g.bmp", make_image_bytes(fmt="BMP", size=(40, 40)))]
        response = client.post(reverse("classifier:upload"), {"images": files})
        assert response.status_code == 413
        assert response["Content-Type"].startswith("text/html")
        assert "Nothing was saved" in response.content.decode()
        assert Prediction.objects.count() == 0

    def test_a_request_under_the_cap_goes_through(self, settings, anonymous_client, monkeypatch):
        monkeypatch.setattr(MultiPartParser, "parse", self.real_parse)
        settings.MAX_REQUEST_BYTES = 100_000
        files = [SimpleUploadedFile("g.png", make_image_bytes())]
        response = anonymous_client.post(URL, {"image": files}, format="multipart")
        assert response.status_code == 201
