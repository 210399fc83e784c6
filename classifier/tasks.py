"""Celery tasks: one chunk of a job's members per task.

Delivery is at least once (acks_late, task_reject_on_worker_lost, prefetch 1 in
settings): a worker that dies mid-chunk leaves the message to another worker, and
job_chunk_process records each member at most once. The model is loaded once per worker
process, after the fork, through the same classifier.inference as the web app.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import DatabaseError

from classifier.exceptions import ModelUnavailableError, StorageUnavailableError
from classifier.jobs import services as job_services
from galaxysite.celery import app

logger = logging.getLogger(__name__)

# Failures that pass: the database or the storage is down, or a chunk lost a race with
# another delivery of itself. The chunk is retried with growing delays.
TRANSIENT_ERRORS = (DatabaseError, StorageUnavailableError, OSError)
RETRY_DELAY_MAX_S = 30


@worker_process_init.connect
def _load_model(**kwargs: Any) -> None:
    # In each pool process after the fork: a TFLite interpreter must not cross a fork.
    from classifier.inference import get_classifier
    from galaxysite.memory import limit_malloc

    limit_malloc()
    try:
        get_classifier()
    except ModelUnavailableError as exc:
        logger.warning("model not loaded at worker start: %s", exc.reason)


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def classify_chunk(self: Task, job_id: int, start: int, stop: int) -> dict[str, int]:
    try:
        outcome = job_services.job_chunk_process(job_id=job_id, start=start, stop=stop)
    except ModelUnavailableError as exc:
        job_services.job_fail(job_id=job_id, reason=f"the model is unavailable: {exc.reason}")
        return {"classified": 0, "failed": 0}
    except TRANSIENT_ERRORS as exc:
        retries = self.request.retries
        reason = f"{type(exc).__name__}: {exc}"
        if retries >= settings.JOB_MAX_RETRIES:
            logger.error(
                "job %s chunk %s-%s gave up after %s retries: %s", job_id, start, stop, retries, reason
            )
            # Marked failed by a task of its own, which waits for the database to come back:
            # a job never stays "running" with nothing left to run it.
            fail_job.apply_async(
                (job_id, f"gave up on a chunk after {retries} retries: {reason}"),
                queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            )
            return {"classified": 0, "failed": 0}
        delay = min(2**retries, RETRY_DELAY_MAX_S)
        logger.warning(
            "job %s chunk %s-%s failed (%s); retry %s in %ss", job_id, start, stop, reason, retries + 1, delay
        )
        raise self.retry(exc=exc, countdown=delay) from exc
    return {"classified": outcome.classified, "failed": outcome.failed}


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def fail_job(self: Task, job_id: int, reason: str) -> None:
    try:
        job_services.job_fail(job_id=job_id, reason=reason)
    except TRANSIENT_ERRORS as exc:
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, RETRY_DELAY_MAX_S)) from exc
