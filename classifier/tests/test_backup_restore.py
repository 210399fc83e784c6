"""Backup and restore with django-dbbackup: database and images round-trip exactly.

Runs against the configured database: SQLite by default, PostgreSQL when DATABASE_URL
says so (CI), where dbbackup drives pg_dump and pg_restore.
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection

from classifier.models import Prediction
from classifier.predictions import services
from classifier.tests.utils import make_image_bytes, media_files

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backup_dir(tmp_path, monkeypatch):
    """dbbackup's storage (STORAGES["dbbackup"], read once at import) pointed at a fresh folder."""
    from dbbackup import settings as dbbackup_settings

    directory = tmp_path / "backups"
    directory.mkdir()
    monkeypatch.setattr(dbbackup_settings, "STORAGE_OPTIONS", {"location": str(directory)})
    return directory


@pytest.fixture(autouse=True)
def _needs_the_dump_tools():
    if connection.vendor == "postgresql" and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are needed to back up PostgreSQL")


def snapshot(media_root):
    rows = list(Prediction.objects.order_by("id").values())
    files = {str(path.relative_to(media_root)): path.read_bytes() for path in media_files(media_root)}
    users = list(get_user_model().objects.order_by("id").values("id", "username", "password", "is_staff"))
    return rows, files, users


def upload(content: bytes, name: str, **kwargs) -> list[Prediction]:
    return services.prediction_create_batch(
        uploads=[SimpleUploadedFile(name, content)], source=Prediction.Source.API, **kwargs
    )


def test_backup_reset_restore_gives_back_identical_records_and_files(media_root, backup_dir, staff):
    shared = make_image_bytes(color=(200, 10, 10))
    upload(shared, "first.png", user=staff, client_ip="192.0.2.1")
    upload(shared, "same-image-again.png")  # shares the stored file with the first
    upload(make_image_bytes(fmt="JPEG", color=(10, 200, 10)), "other.jpg")
    before = snapshot(media_root)
    assert len(before[0]) == 3
    assert len(before[1]) == 2

    call_command("dbbackup", "--quiet")
    call_command("mediabackup", "--quiet")
    names = sorted(path.name for path in backup_dir.iterdir())
    assert any(name.endswith((".sqlite3", ".psql.bin")) for name in names), names
    assert any(name.endswith(".tar") for name in names), names

    upload(make_image_bytes(color=(1, 1, 1)), "after-the-backup.png")
    services.predictions_reset()
    assert snapshot(media_root)[:2] == ([], {})

    call_command("dbrestore", "--noinput", "--quiet")
    call_command("mediarestore", "--noinput", "--quiet")
    # A restore replaces the database under the connection: start a new one, as a restarted app would.
    connection.close()

    assert snapshot(media_root) == before
    # The restored log works: the id sequence goes on after the restored rows.
    [new] = upload(make_image_bytes(color=(5, 6, 7)), "new.png")
    assert new.pk > max(row["id"] for row in before[0])


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's write-ahead log; this run uses another database"
)
def test_sqlite_restore_keeps_the_write_ahead_log_of_open_connections_in_step(media_root, backup_dir):
    """A connection that was open during the restore (another worker's) reads the restored rows.

    Writing the dump over the database file, as django-dbbackup's stock SQLite connector does,
    leaves such a connection's log describing the old file: "disk I/O error" on its next query.
    """
    upload(make_image_bytes(color=(20, 30, 40)), "kept.png")
    call_command("dbbackup", "--quiet")
    other = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        upload(make_image_bytes(color=(50, 60, 70)), "after-the-backup.png")
        assert other.execute("SELECT COUNT(*) FROM classifier_prediction").fetchone()[0] == 2

        call_command("dbrestore", "--noinput", "--quiet")

        assert other.execute("SELECT original_filename FROM classifier_prediction").fetchall() == [
            ("kept.png",)
        ]
        assert connection.cursor().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        other.close()
