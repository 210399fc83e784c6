"""The database cache the rate limits count in (classifier/ops/cache.py), on the test database
(SQLite by default, PostgreSQL with DATABASE_URL): one statement per write, the same values,
expiry and size limit as Django's, and DRF's throttle counting through it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import AnonRateThrottle

from classifier.ops import cache as cache_module

DATABASE_CACHE = {
    "default": {"BACKEND": "classifier.ops.cache.DatabaseCache", "LOCATION": "django_cache"},
}


@pytest.fixture
def database_cache(settings):
    settings.CACHES = DATABASE_CACHE
    # The test settings use a local-memory cache, so migrate made no table for this one.
    call_command("createcachetable", verbosity=0)
    cache = caches["default"]
    cache.clear()
    yield cache
    cache.clear()


def rows(key: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_cache WHERE cache_key LIKE %s", [f"%{key}"])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_write_is_one_statement_and_overwrites_in_place(database_cache, monkeypatch):
    # One write in CULL_EVERY, drawn at random, also counts the table; this one is not it.
    monkeypatch.setattr(cache_module.random, "randrange", lambda _: 1)
    database_cache.set("history", [1.0, 2.0], 60)
    with CaptureQueriesContext(connection) as queries:
        database_cache.set("history", [3.0], 60)
    assert len(queries.captured_queries) == 1
    assert "ON CONFLICT" in queries.captured_queries[0]["sql"]
    assert database_cache.get("history") == [3.0]
    assert rows("history") == 1


@pytest.mark.django_db(transaction=True)
def test_expired_and_missing_entries_read_as_the_default(database_cache):
    database_cache.set("gone", "x", -1)
    database_cache.set("forever", "y", None)
    assert database_cache.get("gone", "default") == "default"
    assert database_cache.get("forever") == "y"
    assert database_cache.get("never-set", []) == []


@pytest.mark.django_db(transaction=True)
def test_the_table_stays_within_its_size_limit(database_cache, monkeypatch):
    monkeypatch.setattr(cache_module, "CULL_EVERY", 1)
    monkeypatch.setattr(database_cache, "_max_entries", 10)
    for index in range(40):
        database_cache.set(f"client-{index}", index, 60)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_cache")
        assert cursor.fetchone()[0] <= 11
    # The newest write is never the one culled.
    assert database_cache.get("client-39") == 39


@pytest.mark.django_db(transaction=True)
def test_drf_throttle_counts_through_it(database_cache, monkeypatch):
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})
    request = APIRequestFactory().post("/api/predictions/", REMOTE_ADDR="192.0.2.7")
    request.user = AnonymousUser()
    allowed = [AnonRateThrottle().allow_request(request, None) for _ in range(5)]
    assert allowed == [True, True, True, False, False]
    # Another client has its own count.
    other = APIRequestFactory().post("/api/predictions/", REMOTE_ADDR="192.0.2.8")
    other.user = AnonymousUser()
    assert AnonRateThrottle().allow_request(other, None)
