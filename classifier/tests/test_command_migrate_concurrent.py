"""Two `manage.py migrate` at once on a fresh database (issue 20).

`make run` and `make worker` started together on a fresh machine both migrated, and the worker
crashed with an IntegrityError on authtoken_token. migrate now holds a lock for its whole run
(a file lock beside the SQLite file, a PostgreSQL advisory lock): the second one waits, then
finds nothing to do. Real processes on a fresh SQLite file and a fresh PostgreSQL database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from classifier.tests.workers import reachable

RUNS = 3  # more than two: every later one must wait, not only the second
TIMEOUT_S = 300
POSTGRES_URL = os.environ.get("MIGRATE_TEST_POSTGRES_URL") or (
    os.environ["DATABASE_URL"]
    if os.environ.get("DATABASE_URL", "").startswith("postgres")
    else "postgres://postgres@127.0.0.1:5432/postgres"
)


def migrate_concurrently(database_url: str, tmp_path: Path) -> list[subprocess.CompletedProcess]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "galaxysite.test_settings",
        "DATABASE_URL": database_url,
        "CACHE_URL": "locmemcache://",
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(RUNS)
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=TIMEOUT_S)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out))
    check = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert check.returncode == 0, f"migrations left unapplied:\n{check.stdout}{check.stderr}"
    return results


def assert_all_succeeded(results: list[subprocess.CompletedProcess]) -> None:
    for result in results:
        assert result.returncode == 0, result.stdout[-4000:]
        assert "Error" not in result.stdout, result.stdout[-4000:]
    # One of them applied the migrations; the others waited and found them applied.
    applied = [r for r in results if "Applying authtoken.0001_initial... OK" in r.stdout]
    assert len(applied) == 1, [r.stdout[-500:] for r in results]


def test_concurrent_migrate_on_a_fresh_sqlite_file(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    assert_all_succeeded(migrate_concurrently(f"sqlite:///{database}", tmp_path))


def test_concurrent_migrate_on_a_fresh_postgresql_database(tmp_path):
    if not reachable(POSTGRES_URL):
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL} (set MIGRATE_TEST_POSTGRES_URL)")
    import psycopg

    name = f"galaxy_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        parts = urlsplit(POSTGRES_URL)
        assert_all_succeeded(migrate_concurrently(urlunsplit(parts._replace(path=f"/{name}")), tmp_path))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
