"""Writes for classification jobs: create, run a chunk, cancel, fail and delete.

Every member is written idempotently: a chunk re-checks, under the job's lock, which of
its members are still pending, and a member's prediction is unique (Prediction.job_member),
so a chunk delivered twice (its worker died before acknowledging it) never records a
member twice. Predictions go through classifier.predictions.services like every other caller.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from classifier.core.exceptions import (
    ImageValidationError,
    JobInputError,
    JobQueueUnavailableError,
    MemberUnreadableError,
    ModelUnavailableError,
    StorageUnavailableError,
)
from classifier.core.inference import get_classifier
from classifier.jobs.catalogues import Catalogue, position_columns
from classifier.jobs.members import NESTED_ARCHIVE_REASON, MemberInput, is_nested_archive
from classifier.models import Job, JobMember, Prediction
from classifier.predictions import cutouts, services
from classifier.predictions.filenames import sanitise_filename

logger = logging.getLogger(__name__)

STAGING_FOLDER = "jobs"
# A chunk being staged stays in memory up to this size (64 typical cutouts are about
# 1.5 MB), then goes to a temporary file: a web process staging large files holds no more.
STAGING_SPOOL_BYTES = 4 * 1024 * 1024
# A member whose staged chunk is gone while it is still pending (the storage lost it): it
# cannot be classified, and retrying would not bring it back.
STAGED_FILE_GONE_REASON = "the staged copy of this file is gone; submit it again"


def _staged_name(job_id: int, start: int) -> str:
    return f"{STAGING_FOLDER}/{job_id}/{start:07d}.zip"


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
            rows = _stage_members(job, members, start=start)
            if catalogue is not None:
                for row in rows:
                    row.catalogue = catalogue.row_for(row.path, basenames=basenames)
            try:
                JobMember.objects.bulk_create(rows)
            except BaseException:
                # No row names the staged chunk, so no clean-up would ever find it.
                _delete_staged({row.staged_name for row in rows if row.staged_name})
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
    _refresh_progress(job.pk)
    job.refresh_from_db()
    if not job.is_active:
        # Ended (cancelled, failed) while staging: chunks staged after its clean-up are removed too.
        _delete_job_staging(job.pk, _staged_names_of(job.pk))
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


def _stage_members(job: Job, members: Sequence[MemberInput], *, start: int) -> list[JobMember]:
    """One chunk's members, their bytes saved through the storage API as one uncompressed
    zip (failed members are not in it).

    One stored file per chunk rather than per member: creating a file is the costly part
    of staging (a metadata write on a local disk, a round trip on object storage), and the
    chunk is read, and deleted, as a whole by the one task that classifies it.
    """
    rows: list[JobMember] = []
    # Spooled: a chunk of large files goes to a temporary file rather than staying in memory.
    with tempfile.SpooledTemporaryFile(max_size=STAGING_SPOOL_BYTES) as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as bundle:
            for index in range(start, min(start + job.chunk_size, len(members))):
                member = members[index]
                row = JobMember(job=job, index=index, path=member.path, error=member.error)
                if member.by_position and not row.error:
                    rows.append(row)  # nothing to stage: the worker fetches its cutout
                    continue
                if not row.error:
                    data, row.error = _read_member(member)
                if row.error:
                    row.status = JobMember.Status.FAILED
                else:
                    bundle.writestr(_bundle_entry(index), data)
                    del data
                rows.append(row)
        staged = [
            row
            for row in rows
            if row.status == JobMember.Status.PENDING and not members[row.index].by_position
        ]
        if staged:
            spool.seek(0)
            name = _staged_name(job.pk, start)
            try:
                name = default_storage.save(name, File(spool))
            except BaseException:
                # A save that fails half-way can leave a partial file.
                _delete_staged([name])
                raise
            for row in staged:
                row.staged_name = name
    return rows


def _bundle_entry(index: int) -> str:
    return f"{index:07d}"


def _read_member(member: MemberInput) -> tuple[bytes, str]:
    """The member's bytes, or the reason it is a failed member."""
    try:
        data = member.read()
    except MemberUnreadableError as exc:
        return b"", exc.reason
    if len(data) > settings.MAX_UPLOAD_BYTES:
        return b"", f"the file is larger than the limit of {settings.MAX_UPLOAD_BYTES:,} bytes"
    if is_nested_archive("", data[:8]):
        return b"", NESTED_ARCHIVE_REASON
    return data, ""


def _enqueue(job: Job, start: int) -> None:
    """Queue a staged chunk once its member rows are committed (at once in autocommit): a
    worker that took it earlier would find no member pending, and the job would never end."""
    job_id, stop = job.pk, start + job.chunk_size
    transaction.on_commit(lambda: _publish_chunk(job_id=job_id, start=start, stop=stop))


def _publish_chunk(*, job_id: int, start: int, stop: int) -> None:
    from classifier.jobs.tasks import classify_chunk

    try:
        # Bounded in time by the broker settings (CELERY_BROKER_TIMEOUT). The queue is read
        # now, not when Celery was configured, so tests can give each run its own.
        classify_chunk.apply_async((job_id, start, stop), queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception as exc:
        # The broker's own message names its host and port: it goes to the log only, and the
        # job (whose error its owner reads) ends failed rather than queued with nothing queued.
        broker = classify_chunk.app.connection_for_write().as_uri()  # the password masked
        logger.exception("could not queue chunk %s-%s of job %s on %s", start, stop, job_id, broker)
        reason = f"the job queue is unavailable ({type(exc).__name__}); submit the job again later"
        job_fail(job_id=job_id, reason=reason)
        raise JobQueueUnavailableError(reason) from exc


@dataclass(frozen=True)
class ChunkOutcome:
    classified: int = 0
    failed: int = 0
    skipped: bool = False


def job_chunk_process(*, job_id: int, start: int, stop: int) -> ChunkOutcome:
    """Classify the pending members with index in [start, stop) and record them.

    Safe to run twice, or side by side with another delivery of the same chunk. Raises
    StorageUnavailableError or DatabaseError when the database or the storage fails (the
    task retries), and ModelUnavailableError when the model cannot serve.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not job.is_active:
        return ChunkOutcome(skipped=True)
    members = list(
        JobMember.objects.filter(
            job_id=job_id, index__gte=start, index__lt=stop, status=JobMember.Status.PENDING
        ).order_by("index")
    )
    if not members:
        return ChunkOutcome(skipped=True)
    classifier = get_classifier()
    _mark_running(job_id, model_version=classifier.model_version)

    ok: list[tuple[JobMember, services.AcceptedUpload]] = []
    refused: dict[int, str] = {}
    # Members of a catalogue of positions have no staged file: their cutouts are fetched.
    places = _fetch_positions(job, [m for m in members if not m.staged_name], ok=ok, refused=refused)
    try:
        for member, data in read_staged([member for member in members if member.staged_name]):
            try:
                [accepted] = services.validate_uploads(
                    [File(io.BytesIO(data), name=PurePosixPath(member.path).name)]
                )
            except ImageValidationError as exc:
                refused[member.pk] = "; ".join(error["error"] for error in exc.errors)[:500]
                continue
            except (ModelUnavailableError, DatabaseError):
                raise
            except Exception as exc:
                # A file a decoder fails on in a way it did not foresee fails alone: the rest of
                # its chunk is still classified, and the job still ends.
                logger.exception("job %s member %s could not be decoded", job_id, member.index)
                refused[member.pk] = f"the file could not be decoded ({type(exc).__name__})"
                continue
            ok.append((member, accepted))
    except FileNotFoundError:
        # Either another delivery of this chunk recorded its members and deleted the file (the
        # pending check below then finds nothing to do), or the file was lost: its members end
        # failed with a reason, so the job still ends instead of retrying for ever.
        logger.warning("job %s chunk %s-%s: a staged file is gone", job_id, start, stop)
        read = {member.pk for member, _ in ok} | set(refused)
        refused.update({member.pk: STAGED_FILE_GONE_REASON for member in members if member.pk not in read})

    with transaction.atomic():
        # Shared: the chunks of one job record side by side; cancel and fail wait for them.
        _lock_job(job_id, shared=True)
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status not in Job.ACTIVE:
            return ChunkOutcome(skipped=True)
        still_pending = set(
            JobMember.objects.filter(
                pk__in=[member.pk for member in members], status=JobMember.Status.PENDING
            ).values_list("pk", flat=True)
        )
        failed_rows = [m for m in members if m.pk in refused and m.pk in still_pending]
        for member in failed_rows:
            member.status = JobMember.Status.FAILED
            member.error = refused[member.pk]
        JobMember.objects.bulk_update(failed_rows, ["status", "error"])
        kept = [(m, a) for m, a in ok if m.pk in still_pending]
        JobMember.objects.filter(pk__in=[m.pk for m, _ in kept]).update(status=JobMember.Status.CLASSIFIED)
        if kept:
            # Classified here, under the job's shared lock: only members still pending cost
            # model time, and a chunk delivered twice classifies nothing twice.
            services.prediction_create_validated(
                accepted=[a for _, a in kept],
                source=Prediction.Source.JOB,
                user=job.user,
                job_members=[m for m, _ in kept],
                provenance=[places.get(m.pk) for m, _ in kept],
            )
        finished_names = {m.staged_name for m in members if m.pk in still_pending and m.staged_name}
        transaction.on_commit(lambda: _delete_staged(finished_names))
    # After the commit, in a transaction of its own that holds the job's lock only to count:
    # whichever chunk counts last sees every other chunk's committed members.
    with transaction.atomic():
        _lock_job(job_id)
        _refresh_progress(job_id)
    return ChunkOutcome(classified=len(kept), failed=len(failed_rows))


def _fetch_positions(
    job: Job,
    members: Sequence[JobMember],
    *,
    ok: list[tuple[JobMember, services.AcceptedUpload]],
    refused: dict[int, str],
) -> dict[int, services.SkyProvenance]:
    """Fetch the members' cutouts: each accepted one joins ``ok``, each failure ``refused``
    with its reason; returns where each accepted member's image came from."""
    places: dict[int, services.SkyProvenance] = {}
    for member, outcome in _fetch_cutouts(job, members) if members else ():
        if isinstance(outcome, str):
            refused[member.pk] = outcome[:500]
        else:
            ok.append((member, outcome[0]))
            places[member.pk] = outcome[1]
    return places


def _fetch_cutouts(
    job: Job, members: Sequence[JobMember]
) -> Iterator[tuple[JobMember, tuple[services.AcceptedUpload, services.SkyProvenance] | str]]:
    """Each member's fetched and validated cutout, or the reason it failed, in order.

    Fetched on CUTOUT_MAX_CONCURRENT threads (the per-process limit in classifier.predictions.cutouts
    holds whatever the number of threads). A position without imaging, or a service that
    still fails after its retries, fails the member alone: the job goes on.
    """
    found = position_columns(job.catalogue_columns)

    def fetch(member: JobMember) -> tuple[services.AcceptedUpload, services.SkyProvenance] | str:
        if found is None:
            return "the job's catalogue has no ra and dec columns"
        try:
            return services.accept_cutout(
                ra=member.catalogue.get(found[0]), dec=member.catalogue.get(found[1])
            )
        except (cutouts.PositionError, cutouts.NoImagingError, cutouts.CutoutUnavailableError) as exc:
            return exc.reason
        finally:
            connection.close()  # a thread's own connection, opened by the cache or validation

    with ThreadPoolExecutor(
        max_workers=max(settings.CUTOUT_MAX_CONCURRENT, 1), thread_name_prefix="cutout"
    ) as pool:
        yield from zip(members, pool.map(fetch, members), strict=True)


def read_staged(members: Sequence[JobMember]) -> Iterator[tuple[JobMember, bytes]]:
    """Each staged member with its bytes, in order, opening each staged chunk once.

    Raises FileNotFoundError when a staged file is gone (another delivery of the chunk
    recorded it and deleted its files, or the storage lost it), and OSError when one is
    unreadable (the task retries).
    """
    for name, group in itertools.groupby(members, key=lambda member: member.staged_name):
        with default_storage.open(name, "rb") as handle:
            if not name.endswith(".zip"):
                # Staged before chunks were bundled: one file per member.
                for member in group:
                    yield member, handle.read()
                continue
            try:
                with zipfile.ZipFile(handle) as bundle:
                    for member in group:
                        yield member, bundle.read(_bundle_entry(member.index))
            except (zipfile.BadZipFile, KeyError, zlib.error) as exc:
                # Written by job_create alone: a damaged one is a storage fault, retried like one.
                raise OSError(f"the staged chunk {name} is damaged: {exc}") from exc


def _lock_job(job_id: int, *, shared: bool = False) -> None:
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


def _mark_running(job_id: int, *, model_version: str) -> None:
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


def _refresh_progress(job_id: int) -> None:
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
        _delete_job_staging_on_commit(job_id)


def job_cancel(*, job: Job) -> bool:
    """Stop a queued or running job; chunks not yet recorded are skipped. False if it had ended."""
    with transaction.atomic():
        _lock_job(job.pk)
        changed = Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now(), **_final_counts(job.pk)
        )
        if changed:
            _delete_job_staging_on_commit(job.pk)
    job.refresh_from_db()
    return bool(changed)


def job_fail(*, job_id: int, reason: str) -> None:
    """End an active job as failed, with the reason shown to its owner."""
    with transaction.atomic():
        _lock_job(job_id)
        changed = Job.objects.filter(pk=job_id, status__in=Job.ACTIVE).update(
            status=Job.Status.FAILED, finished_at=timezone.now(), error=reason[:2000], **_final_counts(job_id)
        )
        if changed:
            _delete_job_staging_on_commit(job_id)


def job_delete(*, job: Job) -> None:
    """Delete a job, its members and its predictions with their images (staff only)."""
    with transaction.atomic():
        services.prediction_delete_many(queryset=Prediction.objects.filter(job=job))
        _delete_job_staging_on_commit(job.pk)
        job.delete()


def _staged_names_of(job_id: int) -> set[str]:
    members = JobMember.objects.filter(job_id=job_id).exclude(staged_name="")
    return set(members.values_list("staged_name", flat=True))


def _delete_job_staging_on_commit(job_id: int) -> None:
    """Once the job's end (or deletion) commits, delete every file it staged.

    Called in the transaction that ends the job, whatever the end: staged files hold the
    owner's uploads, and once the job has ended no chunk will read them again.
    """
    names = _staged_names_of(job_id)  # read now: a deleted job's members are gone after the commit
    transaction.on_commit(lambda: _delete_job_staging(job_id, names))


def _delete_job_staging(job_id: int, names: Iterable[str]) -> None:
    """Delete the job's staged chunks, and anything else left in its staging folder (a chunk
    saved when its members could not be recorded, or a delete that failed before)."""
    _delete_staged(names)
    folder = f"{STAGING_FOLDER}/{job_id}"
    try:
        _folders, files = default_storage.listdir(folder)
    except (OSError, NotImplementedError):
        return  # no folder (nothing staged), or a storage that cannot list
    _delete_staged(f"{folder}/{name}" for name in files)
    # The empty folder too, where the storage has folders (object storage has none).
    with contextlib.suppress(OSError, NotImplementedError):
        Path(default_storage.path(folder)).rmdir()


def _delete_staged(names: Iterable[str]) -> None:
    for name in names:
        _delete_staged_quietly(name)


def _delete_staged_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("could not delete staged job file %s", name, exc_info=True)
