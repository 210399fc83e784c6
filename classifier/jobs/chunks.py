"""Running a chunk: classify a job's pending members with index in [start, stop) and record them.

Every member is written idempotently: a chunk re-checks, under the job's lock, which of
its members are still pending, and a member's prediction is unique (Prediction.job_member),
so a chunk delivered twice (its worker died before acknowledging it) never records a
member twice. Predictions go through classifier.predictions.services like every other caller.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files import File
from django.db import DatabaseError, connection, transaction

from classifier.core.exceptions import (
    CutoutUnavailableError,
    ImageValidationError,
    ModelUnavailableError,
    NoImagingError,
    PositionError,
)
from classifier.jobs.catalogues import position_columns
from classifier.jobs.staging import delete_staged, read_staged
from classifier.jobs.states import lock_job, mark_running, refresh_progress
from classifier.models import Job, JobMember, Prediction
from classifier.predictions.inference import get_classifier
from classifier.predictions.services import (
    AcceptedUpload,
    SkyProvenance,
    accept_cutout,
    prediction_create_validated,
    validate_uploads,
)

logger = logging.getLogger(__name__)

# A member whose staged chunk is gone while it is still pending (the storage lost it): it
# cannot be classified, and retrying would not bring it back.
STAGED_FILE_GONE_REASON = "the staged copy of this file is gone; submit it again"


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
    mark_running(job_id, model_version=classifier.model_version)

    ok: list[tuple[JobMember, AcceptedUpload]] = []
    refused: dict[int, str] = {}
    # Members of a catalogue of positions have no staged file: their cutouts are fetched.
    places = _fetch_positions(job, [m for m in members if not m.staged_name], ok=ok, refused=refused)
    try:
        for member, data in read_staged([member for member in members if member.staged_name]):
            try:
                [accepted] = validate_uploads([File(io.BytesIO(data), name=PurePosixPath(member.path).name)])
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
        lock_job(job_id, shared=True)
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
            prediction_create_validated(
                accepted=[a for _, a in kept],
                source=Prediction.Source.JOB,
                user=job.user,
                job_members=[m for m, _ in kept],
                provenance=[places.get(m.pk) for m, _ in kept],
            )
        finished_names = {m.staged_name for m in members if m.pk in still_pending and m.staged_name}
        transaction.on_commit(lambda: delete_staged(finished_names))
    # After the commit, in a transaction of its own that holds the job's lock only to count:
    # whichever chunk counts last sees every other chunk's committed members.
    with transaction.atomic():
        lock_job(job_id)
        refresh_progress(job_id)
    return ChunkOutcome(classified=len(kept), failed=len(failed_rows))


def _fetch_positions(
    job: Job,
    members: Sequence[JobMember],
    *,
    ok: list[tuple[JobMember, AcceptedUpload]],
    refused: dict[int, str],
) -> dict[int, SkyProvenance]:
    """Fetch the members' cutouts: each accepted one joins ``ok``, each failure ``refused``
    with its reason; returns where each accepted member's image came from."""
    places: dict[int, SkyProvenance] = {}
    for member, outcome in _fetch_cutouts(job, members) if members else ():
        if isinstance(outcome, str):
            refused[member.pk] = outcome[:500]
        else:
            ok.append((member, outcome[0]))
            places[member.pk] = outcome[1]
    return places


def _fetch_cutouts(
    job: Job, members: Sequence[JobMember]
) -> Iterator[tuple[JobMember, tuple[AcceptedUpload, SkyProvenance] | str]]:
    """Each member's fetched and validated cutout, or the reason it failed, in order.

    Fetched on CUTOUT_MAX_CONCURRENT threads (the per-process limit in classifier.predictions.cutouts
    holds whatever the number of threads). A position without imaging, or a service that
    still fails after its retries, fails the member alone: the job goes on.
    """
    found = position_columns(job.catalogue_columns)
    if found is None:
        # A job of positions is made only from a catalogue with both columns (catalogues.py):
        # without them the job is broken, and fails as a whole.
        raise ValueError(f"job {job.pk} has members by position but no ra and dec columns")
    ra_column, dec_column = found

    def fetch(member: JobMember) -> tuple[AcceptedUpload, SkyProvenance] | str:
        try:
            return accept_cutout(ra=member.catalogue.get(ra_column), dec=member.catalogue.get(dec_column))
        except (PositionError, NoImagingError, CutoutUnavailableError) as exc:
            return exc.reason
        finally:
            connection.close()  # a thread's own connection, opened by the cache or validation

    with ThreadPoolExecutor(
        max_workers=max(settings.CUTOUT_MAX_CONCURRENT, 1), thread_name_prefix="cutout"
    ) as pool:
        yield from zip(members, pool.map(fetch, members), strict=True)
