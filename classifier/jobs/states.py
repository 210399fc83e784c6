"""A job's state: its lock, its progress counts, and how it ends (cancelled, failed, deleted).

Counts are recounted from the members' recorded states, never incremented, so a chunk
delivered twice cannot count twice, and a job that ends keeps counters that match its
results file.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from classifier.jobs.staging import delete_job_staging_on_commit
from classifier.models import Job, JobMember, Prediction
from classifier.predictions.services import prediction_delete_many


def lock_job(job_id: int, *, shared: bool = False) -> None:
    """Lock the job's row until the end of the transaction.

    Chunks take it shared while they record, so they do not wait for one another; cancel,
    fail and the progress count take it exclusively, so a chunk never records after a
    cancel has committed and two counts never interleave. SQLite has one database write
    lock, taken here by a write that changes nothing, before any read that a concurrent
    writer could make stale.
    """
    if connection.vendor == "sqlite":
        Job.objects.filter(pk=job_id).update(status=F("status"))
        return
    table = connection.ops.quote_name(Job._meta.db_table)
    mode = "SHARE" if shared else "UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR {mode}", [job_id])  # noqa: S608 - fixed words


def mark_running(job_id: int, *, model_version: str) -> None:
    Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=timezone.now(), model_version=model_version
    )


def _member_counts(job_id: int) -> dict[str, int]:
    return dict(
        JobMember.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("id")).order_by()
    )


def _final_counts(job_id: int) -> dict[str, int]:
    """done and failed from the members' recorded states, for a job ended by cancel or failure.

    Called under the job's exclusive lock: every chunk that recorded before it has committed,
    and none records after it, so the counters match the results file. A chunk's own count
    runs after its commit and leaves an ended job alone, so without this a job cancelled
    part-way kept the counters of its last count (done = 406 beside 470 classified rows).
    """
    counts = _member_counts(job_id)
    return {
        "done": counts.get(JobMember.Status.CLASSIFIED, 0),
        "failed": counts.get(JobMember.Status.FAILED, 0),
    }


def refresh_progress(job_id: int) -> None:
    """Recount the job's members, and end it once none is pending.

    Counted, not incremented, so a chunk that runs twice cannot count twice.
    """
    counts = _member_counts(job_id)
    done = counts.get(JobMember.Status.CLASSIFIED, 0)
    failed = counts.get(JobMember.Status.FAILED, 0)
    active = Job.objects.filter(pk=job_id, status__in=Job.ACTIVE)
    # Members still being staged are not rows yet: the job is not over until all of them are.
    staging = sum(counts.values()) < Job.objects.filter(pk=job_id).values_list("total", flat=True).first()
    if counts.get(JobMember.Status.PENDING, 0) or staging:
        active.update(done=done, failed=failed)
        return
    now = timezone.now()
    if done:
        ended = active.update(done=done, failed=failed, status=Job.Status.SUCCEEDED, finished_at=now)
    else:
        ended = active.update(
            done=done,
            failed=failed,
            status=Job.Status.FAILED,
            finished_at=now,
            error="no file could be classified; see each file's reason",
        )
    Job.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=now)
    if ended:
        delete_job_staging_on_commit(job_id)


def job_cancel(*, job: Job) -> bool:
    """Stop a queued or running job; chunks not yet recorded are skipped. False if it had ended."""
    with transaction.atomic():
        lock_job(job.pk)
        changed = Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now(), **_final_counts(job.pk)
        )
        if changed:
            delete_job_staging_on_commit(job.pk)
    job.refresh_from_db()
    return bool(changed)


def job_fail(*, job_id: int, reason: str) -> None:
    """End an active job as failed, with the reason shown to its owner."""
    with transaction.atomic():
        lock_job(job_id)
        changed = Job.objects.filter(pk=job_id, status__in=Job.ACTIVE).update(
            status=Job.Status.FAILED, finished_at=timezone.now(), error=reason[:2000], **_final_counts(job_id)
        )
        if changed:
            delete_job_staging_on_commit(job_id)


def job_delete(*, job: Job) -> None:
    """Delete a job, its members and its predictions with their images (staff only)."""
    with transaction.atomic():
        prediction_delete_many(queryset=Prediction.objects.filter(job=job))
        delete_job_staging_on_commit(job.pk)
        job.delete()
