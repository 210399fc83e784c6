"""Settings for the test suite: the production settings with a throwaway key.

The tests run against the same settings module as production; only what a test
run cannot provide (a secret, HTTPS) is filled in here.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DJANGO_SECURE_HTTPS", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Tests never reach the internet: a position fetch goes to the discard port (refused) unless a
# test points CUTOUT_URL at its stand-in cutout service (classifier/tests/cutout_server.py).
os.environ.setdefault("CUTOUT_URL", "http://127.0.0.1:9/jpeg-cutout?ra={ra}&dec={dec}")

from galaxysite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests run without collectstatic: serve static files from the finders, unhashed.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# A file-backed SQLite test database, like the production default: concurrent
# writers then wait on SQLite's busy timeout instead of failing on the
# table locks of the in-memory shared cache.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"galaxy-test-{os.getpid()}.sqlite3"),
    }

# In-process tests share one process, so a local-memory cache behaves as the shared one does
# and needs no database access from tests that have none. The shared caches themselves (the
# database's and Redis) are tested through real gunicorn workers (test_rate_limits.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Jobs queued by tests stay in this process, unless a test starts real workers on a real
# broker (they are given CELERY_BROKER_URL). Not set through os.environ: Celery prefers that
# variable to its settings, so tests could not point the app at another broker.
if "CELERY_BROKER_URL" not in os.environ:
    CELERY_BROKER_URL = "memory://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
