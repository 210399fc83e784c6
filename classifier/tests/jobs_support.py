"""Helpers for the job tests: archives made in memory, and running a job's chunks in-process."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterable

from django.core.files.uploadedfile import SimpleUploadedFile

from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Job
from classifier.tests.utils import make_image_bytes
from classifier.tests.workers import wait_for


def distinct_images(count: int, *, size: tuple[int, int] = (96, 80), fmt: str = "PNG") -> list[bytes]:
    """``count`` real images with different content (so different sha256)."""
    return [
        make_image_bytes(fmt=fmt, size=size, color=(index % 256, (index * 7) % 256, (index * 13) % 256))
        for index in range(count)
    ]


def make_zip(
    entries: Iterable[tuple[str, bytes]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    links: Iterable[tuple[str, str]] = (),
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def zip_upload(data: bytes, name: str = "catalogue.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/zip")


def run_chunks_inline(job: Job) -> Job:
    """Run every chunk of the job in this process, through the same service the worker calls."""
    for start in range(0, job.total, job.chunk_size):
        job_services.job_chunk_process(job_id=job.pk, start=start, stop=start + job.chunk_size)
    job.refresh_from_db()
    return job


def submit_archive(user, archive: bytes) -> Job:
    """A job of this .zip, through the same intake and service the pages and the API use."""
    submission = submission_from_uploads(archive=zip_upload(archive))
    return job_services.job_create(
        name=submission.name, members=submission.members, catalogue=submission.catalogue, user=user
    )


def wait_until_ended(job: Job, *, timeout: float = 120) -> Job:
    """Wait for a real worker to end the job (succeeded, failed or cancelled)."""

    def ended() -> bool:
        job.refresh_from_db()
        return not job.is_active

    wait_for(ended, timeout=timeout, what=f"job {job.pk} to end")
    return job
