"""submit_job with the embedded job queue prints no kombu warning (issue 20).

Every submit_job printed "No hostname was supplied. Reverting to default 'localhost'": the
default broker URL, filesystem://, has no host, and kombu warns about that on each connection.
The settings now name one. Real `manage.py` processes with the production settings, the default
broker and one given as the bare URL in the environment; a worker of the same configuration
then runs the job (test_jobs_workers.py covers that path in depth).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from classifier.tests.jobs_support import distinct_images


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def production_env(tmp_path: Path) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CELERY_")) and k != "DATABASE_URL"
    }
    env = {
        **clean,
        "DJANGO_SETTINGS_MODULE": "galaxysite.settings",
        "DJANGO_ENV_FILE": str(tmp_path / "no-such.env"),
        "DJANGO_SECRET_KEY": "submit-job-broker-test-" + "q7" * 20,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "JOB_QUEUE_DIR": str(tmp_path / "queue"),
        "CACHE_URL": "locmemcache://",
    }
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    images = tmp_path / "survey"
    images.mkdir()
    for index, data in enumerate(distinct_images(2)):
        (images / f"g{index}.png").write_bytes(data)
    return env


@pytest.mark.parametrize("broker", [None, "filesystem://", "filesystem:///"])
def test_submit_job_on_the_filesystem_queue_prints_only_the_job_id(production_env, tmp_path, broker):
    env = production_env if broker is None else {**production_env, "CELERY_BROKER_URL": broker}
    result = manage("submit_job", str(tmp_path / "survey"), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().isdigit()
    assert "No hostname was supplied" not in result.stderr
    assert result.stderr == ""
    # The chunk is in the queue folder, for a worker to take.
    assert list((tmp_path / "queue").glob("*.msg"))
