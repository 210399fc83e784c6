"""Django's migrate, run by one process at a time per database.

`make run` and `make worker` each migrate before they start (so either works alone on a fresh
machine); started together on a fresh database, both applied the same migrations and one
crashed (authtoken_token already exists, or an IntegrityError). The whole run, post_migrate
signals included, now holds a lock: a PostgreSQL advisory lock (every machine that shares the
database), or a file lock beside an SQLite file. A migrate that had to wait then finds the
migrations applied and does nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.commands import migrate
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

# Any fixed 64-bit number: the advisory lock's name within the database.
ADVISORY_LOCK_KEY = 0x6761_6C61_7879_6D67  # "galaxymg"


@contextmanager
def migration_lock(connection: BaseDatabaseWrapper) -> Iterator[None]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Session-level: held across migrate's own transactions, and released by the
            # server if this process dies.
            cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        try:
            yield
        finally:
            if connection.connection is not None:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        return
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "sqlite" or not name or name == ":memory:" or "mode=memory" in name:
        yield  # another engine, or a database no other process can reach
        return
    # The lock file is left in place: removing it would let a third process lock a new file
    # while the second still holds the old one. flock is released when this process exits.
    with Path(f"{name}.migrate-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Command(migrate.Command):
    help = migrate.Command.help + " One migrate at a time per database: a second one waits for the first."

    def handle(self, *args: Any, **options: Any) -> None:
        with migration_lock(connections[options["database"]]):
            super().handle(*args, **options)
