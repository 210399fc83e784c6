"""The jobs' Celery side in-process: chunks are sent by task name, a chunk that fails for good
fails its job however the task was called, and a bare filesystem:// broker URL is completed
in the Celery configuration (real workers: test_jobs_workers.py)."""

from __future__ import annotations

import pytest
from celery import Celery

from classifier.jobs import services as job_services
from classifier.jobs import tasks
from classifier.tests.jobs_support import distinct_images, make_zip, submit_archive
from galaxysite.celery import EMBEDDED_BROKER_URL, _complete_filesystem_url
from galaxysite.celery import app as celery_app


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, tuple, dict]]:
    calls: list[tuple[str, tuple, dict]] = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args=(), **options: calls.append((name, args, options))
    )
    return calls


@pytest.mark.django_db(transaction=True)
def test_each_staged_chunk_is_sent_by_the_task_name_once_committed(user, settings, sent):
    settings.JOB_CHUNK_SIZE = 2
    job = submit_archive(user, make_zip([(f"g{i}.png", d) for i, d in enumerate(distinct_images(3))]))
    assert [(name, args) for name, args, _ in sent] == [
        ("classifier.tasks.classify_chunk", (job.pk, 0, 2)),
        ("classifier.tasks.classify_chunk", (job.pk, 2, 4)),
    ]
    assert {options["queue"] for _, _, options in sent} == {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert tasks.classify_chunk.name == job_services.CLASSIFY_CHUNK_TASK


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((7, 64, 128), {}), ((), {"job_id": 7, "start": 64, "stop": 128}), ((7,), {"start": 64, "stop": 128})],
)
def test_a_chunk_that_fails_for_good_fails_its_job_however_it_was_called(monkeypatch, caplog, args, kwargs):
    failed: list[tuple] = []
    monkeypatch.setattr(tasks.fail_job, "apply_async", lambda args, **options: failed.append(args))
    tasks.classify_chunk.on_failure(RuntimeError("boom"), "task-id", args, kwargs, None)
    assert failed == [(7, "a chunk failed unexpectedly: RuntimeError")]
    assert "job 7 chunk 64-128" in caplog.text


@pytest.mark.parametrize("url", ["filesystem://", "filesystem:///", "filesystem:"])
def test_a_bare_filesystem_broker_url_is_given_a_host(url, monkeypatch):
    # As Celery reads it: the environment variable before the settings.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    app = Celery("bare")
    _complete_filesystem_url(app)
    assert app.conf.broker_write_url == app.conf.broker_read_url == EMBEDDED_BROKER_URL


def test_other_broker_urls_are_left_alone(monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://cache:6379/0")
    app = Celery("redis")
    _complete_filesystem_url(app)
    assert app.conf.broker_write_url == "redis://cache:6379/0"
