"""Retention: deleting audit records (and their images) older than a cut-off, in batches.

Each batch is its own short transaction through services.prediction_delete_many, which
takes the same per-file locks as an upload (classifier/predictions/storage.py): an image shared by
content hash with a newer record, or with an upload arriving meanwhile, is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from classifier.models import Prediction
from classifier.predictions import services

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class PruneReport:
    cutoff: datetime
    records: int
    files: int
    bytes: int


def prune_cutoff(*, older_than_days: int, now: datetime | None = None) -> datetime:
    if older_than_days < 1:
        msg = "older_than_days must be at least 1"
        raise ValueError(msg)
    return (now or timezone.now()) - timedelta(days=older_than_days)


def predictions_older_than(cutoff: datetime) -> QuerySet[Prediction]:
    return Prediction.objects.filter(created_at__lt=cutoff)


def _size(name: str) -> int:
    try:
        return default_storage.size(name)
    except OSError:
        return 0


def prediction_prune_preview(*, cutoff: datetime) -> PruneReport:
    """What a prune would delete now: the records, and the files no newer record shares."""
    doomed = predictions_older_than(cutoff)
    newer_images = Prediction.objects.filter(created_at__gte=cutoff).values("image")
    # Worked out in the database, so a large log is never loaded into memory.
    orphaned = (
        doomed.exclude(image="")
        .exclude(image__in=newer_images)
        .order_by()
        .values_list("image", flat=True)
        .distinct()
    )
    files = size = 0
    for name in orphaned.iterator():
        files += 1
        size += _size(name)
    return PruneReport(cutoff=cutoff, records=doomed.count(), files=files, bytes=size)


def prediction_prune(*, cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete every record created before ``cutoff``, oldest first, ``batch_size`` at a time.

    Returns the number of records deleted. Records created meanwhile are never touched
    (the cut-off is fixed), and a crash between batches leaves a consistent log.
    """
    if batch_size < 1:
        msg = "batch_size must be at least 1"
        raise ValueError(msg)
    deleted = 0
    while True:
        with transaction.atomic():
            _write_lock_first()
            oldest_first = predictions_older_than(cutoff).order_by("created_at", "id")
            ids = list(oldest_first.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            deleted += services.prediction_delete_many(queryset=Prediction.objects.filter(pk__in=ids))


def _write_lock_first() -> None:
    """On SQLite, take the database write lock before reading.

    A SQLite transaction that reads and then writes while another connection writes fails
    at once with "database is locked" (waiting could deadlock); one that starts by writing
    waits its turn on the busy timeout, like an upload does. PostgreSQL needs nothing here:
    the per-file advisory locks of classifier/predictions/storage.py do the serialising.
    """
    if connection.vendor != "sqlite":
        return
    table = connection.ops.quote_name(Prediction._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET id = id WHERE id IS NULL")  # noqa: S608 - a model's table name
