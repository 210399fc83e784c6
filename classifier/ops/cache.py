"""Django's database cache with ``set`` as one statement.

The rate limits count in the default cache (CACHES), which is the database's unless CACHE_URL
names Redis. DRF's throttle reads a client's history and writes it back on every request it
counts; Django's DatabaseCache writes with five statements (a COUNT(*) of the whole table for
its size limit, then BEGIN, SELECT, UPDATE or INSERT, COMMIT). On PostgreSQL and SQLite this
backend writes with a single INSERT ... ON CONFLICT DO UPDATE, which is atomic by itself, and
checks the table's size limit (MAX_ENTRIES, then Django's own cull) on one write in
CULL_EVERY instead of on every write. Everything else, ``add`` and ``touch`` included, is
Django's.
"""

from __future__ import annotations

import base64
import pickle
import random
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections, router
from django.utils.timezone import now as tz_now

# The size check costs a COUNT(*) over the table; once in this many writes keeps the table
# within MAX_ENTRIES plus the writes between two checks.
CULL_EVERY = 50
UPSERT_VENDORS = ("postgresql", "sqlite")


class DatabaseCache(DjangoDatabaseCache):
    def set(
        self, key: str, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        if connection.vendor not in UPSERT_VENDORS:
            super().set(key, value, timeout, version)
            return
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        if timeout is None:
            expires = datetime.max  # noqa: DTZ901 - as Django's own DatabaseCache does
        else:
            expires = datetime.fromtimestamp(timeout, tz=UTC if settings.USE_TZ else None)
        expires = connection.ops.adapt_datetimefield_value(expires.replace(microsecond=0))
        encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
        quote = connection.ops.quote_name
        table, cache_key, column, expires_column = (
            quote(name) for name in (self._table, "cache_key", "value", "expires")
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({cache_key}, {column}, {expires_column}) VALUES (%s, %s, %s) "  # noqa: S608 - quoted table and column names
                f"ON CONFLICT ({cache_key}) DO UPDATE SET {column} = EXCLUDED.{column}, "
                f"{expires_column} = EXCLUDED.{expires_column}",
                [key, encoded, expires],
            )
            if random.randrange(CULL_EVERY) == 0:  # noqa: S311 - spreads the size check, not a secret
                cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
                entries = cursor.fetchone()[0]
                if entries > self._max_entries:
                    self._cull(db, cursor, tz_now().replace(microsecond=0), entries)
