"""Shared fixtures: an isolated media root, named users, API clients, test images and a Redis
queue of its own for tests with real workers.

Helpers that tests import live in classifier/tests/utils.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.signals import setting_changed
from django.utils import translation
from rest_framework.test import APIClient

from classifier.tests.utils import GALAXY_DATA_DIR, make_image_bytes
from classifier.tests.workers import REDIS_URL, reachable
from galaxysite.celery import app as celery_app


def _reconfigure_celery(*, setting: str, value: object, **kwargs: object) -> None:
    # Celery reads its settings once: a test's override reaches the app as it reaches Django.
    if not setting.startswith("CELERY_"):
        return
    celery_app.conf[setting.removeprefix("CELERY_").lower()] = value
    # Connections already made keep their old broker: drop them so the next send reconnects.
    celery_app._pool = None  # Celery has no public way to drop its connection pool.
    celery_app.amqp._producer_pool = None


@pytest.fixture(autouse=True, scope="session")
def _celery_follows_settings() -> Iterator[None]:
    setting_changed.connect(_reconfigure_celery)
    yield
    setting_changed.disconnect(_reconfigure_celery)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    """Every test writes its images to its own temporary MEDIA_ROOT."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture(autouse=True)
def _back_to_english() -> Iterator[None]:
    # LocaleMiddleware leaves the last request's language active in this thread: the next
    # test must not run in Spanish.
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters live in the cache; one test's requests must not throttle the next.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(django_user_model):
    """A logged-in, non-staff user: may classify and read the audit log, may not delete."""
    return django_user_model.objects.create_user(username="reader", password="reader-pass-123")


@pytest.fixture
def staff(django_user_model):
    """A staff user: may also delete predictions, one by one or in bulk, and use the admin."""
    return django_user_model.objects.create_user(
        username="staff", password="staff-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def anonymous_client() -> APIClient:
    """Nobody logged in: may classify (unless ALLOW_ANONYMOUS_PREDICT is off), may not read the log."""
    return APIClient()


@pytest.fixture
def user_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def staff_client(staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def redis_celery(settings) -> Iterator[str]:
    """Celery on the test Redis, on a queue of this test's own (emptied afterwards), so nothing
    another run sends reaches it; skips the test when Redis is not reachable."""
    if not reachable(REDIS_URL):
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set JOBS_TEST_REDIS_URL)")
    import redis

    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    settings.CELERY_TASK_DEFAULT_QUEUE = f"jobs-test-{uuid.uuid4().hex[:12]}"
    yield REDIS_URL
    redis.Redis.from_url(REDIS_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)


@pytest.fixture
def image_bytes() -> Callable[..., bytes]:
    return make_image_bytes


@pytest.fixture
def galaxy_images() -> list[Path]:
    """Real Galaxy10 DECaLS images from the shared data folder (read-only, never copied)."""
    if not GALAXY_DATA_DIR.is_dir():
        pytest.skip(f"real galaxy images not available: {GALAXY_DATA_DIR} is absent")
    images = sorted(GALAXY_DATA_DIR.glob("*.jpg"))
    if not images:
        pytest.skip(f"real galaxy images not available: no .jpg in {GALAXY_DATA_DIR}")
    return images


@pytest.fixture
def cutout_server(settings):
    """A stand-in for the Legacy Surveys cutout service on loopback, CUTOUT_URL pointed at it
    (classifier/tests/cutout_server.py). Tests never reach the internet."""
    from classifier.tests.cutout_server import running_cutout_server

    yield from running_cutout_server(settings)


@pytest.fixture
def model_copy(settings, tmp_path: Path):
    """A private copy of the served model and manifest that a test may break.

    Returns (model_path, manifest_path); the settings already point at the copy.
    """
    import shutil

    directory = tmp_path / "model"
    directory.mkdir()
    model_path = directory / "galaxy10.tflite"
    manifest_path = directory / "galaxy10.json"
    shutil.copyfile(settings.MODEL_PATH, model_path)
    shutil.copyfile(settings.MODEL_MANIFEST, manifest_path)
    settings.MODEL_PATH = model_path
    settings.MODEL_MANIFEST = manifest_path
    return model_path, manifest_path
