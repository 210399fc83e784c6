"""Writes for classification jobs: the feature's one entry point for every caller.

job_create records a job and stages its members chunk by chunk (staging.py), queueing each
chunk as it is staged; chunks.py runs a chunk, and states.py cancels, fails, deletes and
counts. Callers (views, the API, commands, the admin, the Celery tasks) use the names here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction

import galaxysite
from classifier.core.exceptions import (
    JobInputError,
    JobQueueUnavailableError,
    StorageUnavailableError,
)
from classifier.jobs.catalogues import Catalogue
from classifier.jobs.chunks import STAGED_FILE_GONE_REASON, ChunkOutcome, job_chunk_process
from classifier.jobs.members import MemberInput
from classifier.jobs.staging import (
    delete_job_staging,
    delete_staged,
    read_staged,
    stage_members,
    staged_names_of,
)
from classifier.jobs.states import job_cancel, job_delete, job_fail, refresh_progress
from classifier.models import Job, JobMember
from classifier.predictions.filenames import sanitise_filename

__all__ = [
    "CLASSIFY_CHUNK_TASK",
    "STAGED_FILE_GONE_REASON",
    "ChunkOutcome",
    "JobQueueUnavailableError",
    "job_cancel",
    "job_chunk_process",
    "job_create",
    "job_delete",
    "job_fail",
    "read_staged",
]

logger = logging.getLogger(__name__)

# The task that runs one chunk (classifier/jobs/tasks.py), by the name that messages already
# queued know it by.
CLASSIFY_CHUNK_TASK = "classifier.tasks.classify_chunk"


def job_create(
    *,
    name: str,
    members: Sequence[MemberInput],
    catalogue: Catalogue | None = None,
    user: Any = None,
) -> Job:
    """Record the job, then stage its members chunk by chunk, queueing each chunk as soon as
    it is staged: workers start on the first chunk while the rest is still being read.

    Raises JobInputError, with nothing saved, when the submission is refused as a whole;
    JobQueueUnavailableError when the broker cannot take a chunk, and StorageUnavailableError
    when the media storage or the database fails while staging (the job is then recorded as
    failed, with the reason).
    """
    _check_members(members)
    owner = user if user is not None and getattr(user, "is_authenticated", False) else None
    job = Job.objects.create(
        name=sanitise_filename(name),
        user=owner,
        chunk_size=settings.JOB_CHUNK_SIZE,
        total=len(members),
        catalogue_columns=catalogue.columns if catalogue is not None else [],
        by_position=any(member.by_position for member in members),
    )
    basenames = Counter(PurePosixPath(member.path).name for member in members)
    try:
        for start in range(0, len(members), job.chunk_size):
            if not Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE).exists():
                break  # cancelled while it was being staged
            rows = stage_members(job, members, start=start)
            if catalogue is not None:
                for row in rows:
                    row.catalogue = catalogue.row_for(row.path, basenames=basenames)
            try:
                JobMember.objects.bulk_create(rows)
            except BaseException:
                # No row names the staged chunk, so no clean-up would ever find it.
                delete_staged({row.staged_name for row in rows if row.staged_name})
                raise
            if any(row.status == JobMember.Status.PENDING for row in rows):
                _enqueue(job, start)
    except (DatabaseError, OSError) as exc:
        reason = f"the {'database' if isinstance(exc, DatabaseError) else 'media storage'} failed: {exc}"
        logger.exception("could not stage job %s", job.pk)
        job_fail(job_id=job.pk, reason=reason)
        raise StorageUnavailableError(reason) from exc
    except BaseException as exc:
        # Whatever stopped the staging, the job ends rather than staying queued with no members
        # (a job already failed, by a broker outage, keeps its reason).
        job_fail(job_id=job.pk, reason=f"the job could not be staged ({type(exc).__name__})")
        raise
    refresh_progress(job.pk)
    job.refresh_from_db()
    if not job.is_active:
        # Ended (cancelled, failed) while staging: chunks staged after its clean-up are removed too.
        delete_job_staging(job.pk, staged_names_of(job.pk))
    return job


def _check_members(members: Sequence[MemberInput]) -> None:
    if not members:
        raise JobInputError("the submission has no files to classify")
    if len(members) > settings.JOB_MAX_MEMBERS:
        raise JobInputError(f"more than {settings.JOB_MAX_MEMBERS:,} files were sent", too_large=True)
    seen: set[str] = set()
    for member in members:
        if member.path in seen:
            raise JobInputError(f"the file {member.path!r} appears twice in the submission")
        seen.add(member.path)


def _enqueue(job: Job, start: int) -> None:
    """Queue a staged chunk once its member rows are committed (at once in autocommit): a
    worker that took it earlier would find no member pending, and the job would never end."""
    job_id, stop = job.pk, start + job.chunk_size
    transaction.on_commit(lambda: _publish_chunk(job_id=job_id, start=start, stop=stop))


def _publish_chunk(*, job_id: int, start: int, stop: int) -> None:
    # Sent by name: the tasks module calls these services, so these services never import it.
    app = galaxysite.celery_app
    try:
        # Bounded in time by the broker settings (CELERY_BROKER_TIMEOUT). The queue is read
        # now, not when Celery was configured, so tests can give each run its own.
        app.send_task(
            CLASSIFY_CHUNK_TASK, args=(job_id, start, stop), queue=settings.CELERY_TASK_DEFAULT_QUEUE
        )
    except Exception as exc:
        # The broker's own message names its host and port: it goes to the log only, and the
        # job (whose error its owner reads) ends failed rather than queued with nothing queued.
        broker = app.connection_for_write().as_uri()  # the password masked
        logger.exception("could not queue chunk %s-%s of job %s on %s", start, stop, job_id, broker)
        reason = f"the job queue is unavailable ({type(exc).__name__}); submit the job again later"
        job_fail(job_id=job_id, reason=reason)
        raise JobQueueUnavailableError(reason) from exc
