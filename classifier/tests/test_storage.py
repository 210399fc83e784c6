"""classifier/predictions/storage.py on its own: files shared by content hash, written once, removed with
their last row, and the lock that keeps writers and deleters of one file apart.

The lock tests commit for real (transactional database) from two threads, each with its own
database connection, so the locks are the backend's own: PostgreSQL's advisory locks with
DATABASE_URL=postgres://..., SQLite's write lock otherwise.
"""

import threading
import time

import pytest
from django.db import OperationalError, connection, transaction

from classifier.models import Prediction
from classifier.predictions import storage
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import in_thread, media_files

NAME = "predictions/ab/" + "ab" * 32 + ".png"
OTHER = "predictions/cd/" + "cd" * 32 + ".png"
PAUSE_S = 0.5
# Only ever reached when something hangs: a held lock is always released by the test, so a
# long bound costs nothing, while a short one let a loaded machine release a lock early.
WAIT_S = 60


class Reader:
    """A file's content, counting how often it is read."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.content


@pytest.mark.django_db
class TestStoreShared:
    def test_identical_content_is_written_once(self, media_root):
        first, second = Reader(b"galaxy"), Reader(b"galaxy")
        with transaction.atomic():
            stored = storage.store_shared([(NAME, first), (NAME, second)])

        assert stored.names == [NAME, NAME]
        assert stored.written == [NAME]
        assert (first.calls, second.calls) == (1, 0)
        assert media_files(media_root) == [media_root / NAME]
        assert (media_root / NAME).read_bytes() == b"galaxy"

    def test_an_existing_file_is_shared_not_read_or_rewritten(self, media_root):
        with transaction.atomic():
            storage.store_shared([(NAME, Reader(b"first"))])
        again = Reader(b"second")
        with transaction.atomic():
            stored = storage.store_shared([(NAME, again), (OTHER, Reader(b"other"))])

        assert stored.names == [NAME, OTHER]
        assert stored.written == [OTHER]
        assert again.calls == 0
        assert (media_root / NAME).read_bytes() == b"first"

    def test_a_write_failing_part_way_removes_what_it_wrote(self, media_root):
        def broken() -> bytes:
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError, match="No space left"), transaction.atomic():
            storage.store_shared([(NAME, Reader(b"a")), (OTHER, broken)])

        assert media_files(media_root) == []

    def test_a_failed_transaction_leaves_no_file(self, media_root):
        written: list[str] = []

        def insert_fails() -> None:
            with transaction.atomic():
                written.extend(storage.store_shared([(NAME, Reader(b"a")), (OTHER, Reader(b"b"))]).written)
                raise RuntimeError("the rows could not be inserted")

        with pytest.raises(RuntimeError):
            insert_fails()
        assert len(media_files(media_root)) == 2
        storage.discard_written(written)

        assert media_files(media_root) == []

    def test_discard_keeps_a_file_that_a_committed_row_refers_to(self, media_root):
        # An identical upload that arrived after the failed transaction rolled back shares it now.
        with transaction.atomic():
            written = storage.store_shared([(NAME, Reader(b"a")), (OTHER, Reader(b"b"))]).written
        PredictionFactory(image=NAME)
        storage.discard_written(written)

        assert media_files(media_root) == [media_root / NAME]

    def test_discard_removes_the_files_when_the_database_cannot_be_asked(self, media_root, monkeypatch):
        with transaction.atomic():
            written = storage.store_shared([(NAME, Reader(b"a"))]).written
        PredictionFactory(image=NAME)

        def database_down(names):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(storage, "lock", database_down)
        storage.discard_written(written)

        assert media_files(media_root) == []


@pytest.mark.django_db
class TestReleaseAfterDelete:
    def delete(self, prediction: Prediction) -> None:
        with transaction.atomic():
            name = prediction.image.name
            prediction.delete()
            storage.release_after_delete({name})

    def test_the_file_goes_with_its_last_row(self, media_root, django_capture_on_commit_callbacks):
        first = PredictionFactory(seed=1)
        second = PredictionFactory(seed=1, image=first.image.name)
        stored = media_root / first.image.name

        with django_capture_on_commit_callbacks(execute=True):
            self.delete(first)
        assert stored.is_file(), "the file went while a row still referred to it"

        with django_capture_on_commit_callbacks(execute=True):
            self.delete(second)
        assert media_files(media_root) == []

    def test_a_rolled_back_delete_keeps_the_file(self, media_root, django_capture_on_commit_callbacks):
        prediction = PredictionFactory()

        def delete_rolled_back() -> None:
            with transaction.atomic():
                Prediction.objects.filter(pk=prediction.pk).delete()
                storage.release_after_delete({prediction.image.name})
                raise RuntimeError("the delete is rolled back")

        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
            delete_rolled_back()

        assert callbacks == []
        assert Prediction.objects.count() == 1
        assert media_files(media_root) == [media_root / prediction.image.name]

    def test_empty_names_are_ignored(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
            storage.release_after_delete({""})
        assert callbacks == []


@pytest.mark.django_db(transaction=True)
class TestLock:
    def hold(self, names, held: threading.Event, release: threading.Event):
        def run():
            with transaction.atomic():
                storage.lock(names)
                held.set()
                release.wait(WAIT_S)

        return run

    def test_a_deleter_waits_for_a_writer_then_keeps_the_file_it_shares(self, media_root):
        """The writer has found the file and will refer to it, not yet committed; the delete
        of the last committed row must wait for it, then see its row and keep the file."""
        with transaction.atomic():
            storage.store_shared([(NAME, Reader(b"galaxy"))])
        last = PredictionFactory(image=NAME)
        found, release_writer = threading.Event(), threading.Event()

        def writer():
            with transaction.atomic():
                stored = storage.store_shared([(NAME, Reader(b"never read"))])
                found.set()
                release_writer.wait(WAIT_S)
                return PredictionFactory(image=stored.names[0])

        results = {}
        write = in_thread(writer, results, "writer")
        assert found.wait(WAIT_S)
        delete = in_thread(lambda: TestReleaseAfterDelete().delete(last), results, "deleter")
        time.sleep(PAUSE_S)
        deleter_waited = delete.is_alive()
        release_writer.set()
        write.join(WAIT_S)
        delete.join(WAIT_S)

        assert results["deleter"] is None
        assert isinstance(results["writer"], Prediction)
        assert list(Prediction.objects.values_list("image", flat=True)) == [NAME]
        assert (media_root / NAME).read_bytes() == b"galaxy"
        assert deleter_waited, "the delete's clean-up did not wait for the writer sharing its file"

    def test_a_writer_waits_for_a_deleter_then_writes_the_file_again(self, media_root):
        """The deleter holds the lock and is about to remove the file; a writer of the same
        content must wait, then find the file gone and write it again."""
        with transaction.atomic():
            storage.store_shared([(NAME, Reader(b"old"))])
        held, release = threading.Event(), threading.Event()

        def deleter():
            with transaction.atomic():
                storage.lock({NAME})
                held.set()
                release.wait(WAIT_S)
                storage._delete_file_quietly(NAME)

        def writer():
            with transaction.atomic():
                return storage.store_shared([(NAME, Reader(b"new"))])

        results = {}
        delete = in_thread(deleter, results, "deleter")
        assert held.wait(WAIT_S)
        write = in_thread(writer, results, "writer")
        time.sleep(PAUSE_S)
        writer_waited = write.is_alive()
        release.set()
        delete.join(WAIT_S)
        write.join(WAIT_S)

        assert results["deleter"] is None
        assert results["writer"].written == [NAME]
        assert (media_root / NAME).read_bytes() == b"new"
        assert writer_waited, "the writer did not wait for the deleter of its file"

    def test_postgresql_locks_each_name_on_its_own(self):
        if connection.vendor != "postgresql":
            pytest.skip("PostgreSQL only: SQLite has one database-wide write lock, so every name waits")
        held, release = threading.Event(), threading.Event()
        results = {}
        holder = in_thread(self.hold({NAME}, held, release), results, "holder")
        assert held.wait(WAIT_S)
        other = in_thread(lambda: lock_and_return({OTHER}), results, "other")
        other.join(WAIT_S)
        # Started only now: a set of names is locked in key order, so a "same" started first
        # could hold OTHER while it waits for NAME, and "other" would wait behind it.
        same = in_thread(lambda: lock_and_return({NAME, OTHER}), results, "same")
        time.sleep(PAUSE_S)
        same_waited = same.is_alive()
        release.set()
        holder.join(WAIT_S)
        same.join(WAIT_S)

        assert results["other"] == "locked", "a lock on another name waited"
        assert results["same"] == "locked"
        assert same_waited, "a second lock of the same name did not wait"

    def test_sqlite_lock_takes_the_database_write_lock(self):
        if connection.vendor != "sqlite":
            pytest.skip("SQLite only: PostgreSQL locks each name on its own")
        held, release = threading.Event(), threading.Event()
        results = {}
        holder = in_thread(self.hold({NAME}, held, release), results, "holder")
        assert held.wait(WAIT_S)
        other = in_thread(lambda: lock_and_return({OTHER}), results, "other")
        time.sleep(PAUSE_S)
        other_waited = other.is_alive()
        release.set()
        holder.join(WAIT_S)
        other.join(WAIT_S)

        assert other_waited, "a lock on another name did not wait for SQLite's write lock"
        assert results["other"] == "locked"


def lock_and_return(names) -> str:
    with transaction.atomic():
        storage.lock(names)
    return "locked"
