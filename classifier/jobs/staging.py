"""Staged chunks: a job's member bytes, kept through the storage API until a worker reads them.

Every staged file holds an owner's uploads: it is deleted once its members are recorded,
and whatever a job staged is deleted once the job ends.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from classifier.core.exceptions import MemberUnreadableError
from classifier.jobs.members import NESTED_ARCHIVE_REASON, MemberInput, is_nested_archive
from classifier.models import Job, JobMember

logger = logging.getLogger(__name__)

STAGING_FOLDER = "jobs"
# A chunk being staged stays in memory up to this size (64 typical cutouts are about
# 1.5 MB), then goes to a temporary file: a web process staging large files holds no more.
STAGING_SPOOL_BYTES = 4 * 1024 * 1024


def _staged_name(job_id: int, start: int) -> str:
    return f"{STAGING_FOLDER}/{job_id}/{start:07d}.zip"


def stage_members(job: Job, members: Sequence[MemberInput], *, start: int) -> list[JobMember]:
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
                delete_staged([name])
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


def staged_names_of(job_id: int) -> set[str]:
    members = JobMember.objects.filter(job_id=job_id).exclude(staged_name="")
    return set(members.values_list("staged_name", flat=True))


def delete_job_staging_on_commit(job_id: int) -> None:
    """Once the job's end (or deletion) commits, delete every file it staged.

    Called in the transaction that ends the job, whatever the end: staged files hold the
    owner's uploads, and once the job has ended no chunk will read them again.
    """
    names = staged_names_of(job_id)  # read now: a deleted job's members are gone after the commit
    transaction.on_commit(lambda: delete_job_staging(job_id, names))


def delete_job_staging(job_id: int, names: Iterable[str]) -> None:
    """Delete the job's staged chunks, and anything else left in its staging folder (a chunk
    saved when its members could not be recorded, or a delete that failed before)."""
    delete_staged(names)
    folder = f"{STAGING_FOLDER}/{job_id}"
    try:
        _folders, files = default_storage.listdir(folder)
    except (OSError, NotImplementedError):
        return  # no folder (nothing staged), or a storage that cannot list
    delete_staged(f"{folder}/{name}" for name in files)
    # The empty folder too, where the storage has folders (object storage has none).
    with contextlib.suppress(OSError, NotImplementedError):
        Path(default_storage.path(folder)).rmdir()


def delete_staged(names: Iterable[str]) -> None:
    for name in names:
        _delete_staged_quietly(name)


def _delete_staged_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("could not delete staged job file %s", name, exc_info=True)
