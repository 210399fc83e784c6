"""The embedded SQLite database runs in write-ahead-log mode (galaxysite/settings/base.py)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the SQLite settings; this run uses another database"
)
def test_sqlite_commits_to_a_write_ahead_log_synced_at_checkpoints():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 1  # NORMAL
