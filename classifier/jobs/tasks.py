"""Celery tasks: one chunk of a job's members per task.

Delivery is at least once (task_acks_late, task_reject_on_worker_lost, prefetch 1 in
settings): a worker that dies mid-chunk leaves the message to another worker, and
job_chunk_process records each member at most once. The model is loaded once per worker
process, after the fork, through the same classifier.predictions.inference as the web app.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from celery import Task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import DatabaseError

from classifier.core.exceptions import ModelUnavailableError, StorageUnavailableError
from classifier.jobs import services as job_services
from classifier.predictions.inference import get_classifier
from galaxysite.celery import app
from galaxysite.memory import limit_malloc

logger = logging.getLogger(__name__)

# Failures that pass: the database or the storage is down, or a chunk lost a race with
# another delivery of itself. The chunk is retried with delays 1, 2, 4 ... s up to
# JOB_RETRY_DELAY_MAX_S (Celery's retry_backoff; no jitter, so the ride-out time in
# settings holds), JOB_MAX_RETRIES times.
TRANSIENT_ERRORS = (DatabaseError, StorageUnavailableError, OSError)
RETRY_OPTIONS: dict[str, Any] = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": settings.JOB_RETRY_DELAY_MAX_S,
    "retry_jitter": False,
}


class ChunkTask(Task):
    """A chunk that fails for good (retries spent, or an unexpected error) fails its job:
    a job never stays "running" with nothing left to run it."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # The chunk as the task was called, by position (as job_create sends it) or by keyword.
        chunk = inspect.signature(self.run).bind(*args, **kwargs).arguments
        job_id, start, stop = chunk["job_id"], chunk["start"], chunk["stop"]
        # The job's error is shown to its owner: the exception's text (which may name servers,
        # ports and paths) stays in the worker's log.
        if isinstance(exc, TRANSIENT_ERRORS):
            reason = f"gave up on a chunk after {self.request.retries} retries: {type(exc).__name__}"
        else:
            reason = f"a chunk failed unexpectedly: {type(exc).__name__}"
        logger.error("job %s chunk %s-%s: %s (%s)", job_id, start, stop, reason, exc)
        # Marked failed by a task of its own, which waits for the database to come back.
        fail_job.apply_async((job_id, reason), queue=settings.CELERY_TASK_DEFAULT_QUEUE)


@worker_process_init.connect
def _load_model(**kwargs: Any) -> None:
    # In each pool process after the fork: a TFLite interpreter must not cross a fork.
    limit_malloc()
    try:
        get_classifier()
    except ModelUnavailableError as exc:
        logger.warning("model not loaded at worker start: %s", exc.reason)


# Task names predate the move to classifier.jobs: messages already queued must still find them.
@app.task(
    name=job_services.CLASSIFY_CHUNK_TASK,
    base=ChunkTask,
    max_retries=settings.JOB_MAX_RETRIES,
    **RETRY_OPTIONS,
)
def classify_chunk(job_id: int, start: int, stop: int) -> dict[str, int]:
    try:
        outcome = job_services.job_chunk_process(job_id=job_id, start=start, stop=stop)
    except ModelUnavailableError as exc:
        job_services.job_fail(job_id=job_id, reason=f"the model is unavailable: {exc.reason}")
        return {"classified": 0, "failed": 0}
    return {"classified": outcome.classified, "failed": outcome.failed}


@app.task(name="classifier.tasks.fail_job", max_retries=None, **RETRY_OPTIONS)
def fail_job(job_id: int, reason: str) -> None:
    job_services.job_fail(job_id=job_id, reason=reason)
