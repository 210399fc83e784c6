"""Prediction images shared by content hash: writing, locking and removing them safely.

Identical uploads are stored once (the path comes from the sha256, models.prediction_image_path)
and every row with that content refers to the one file. Sharing makes two questions racy across
requests and processes: "the file exists, I will refer to it" (an upload) and "no row refers to
the file any more, I will remove it" (a delete). Every function here that asks either question
does so under ``lock``, held until the end of the current transaction, so they never interleave.

Callers (classifier/predictions/services.py) own the transactions and the rows; this module owns the files.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction

from classifier.models import Prediction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredFiles:
    """What ``store_shared`` did: the stored name of each file (in the order given), and the
    names it wrote itself, which the caller discards if its transaction does not commit."""

    names: list[str]
    written: list[str]


def lock(names: Collection[str]) -> None:
    """Serialise, until the end of the current transaction, every writer and deleter of these files.

    PostgreSQL takes one advisory lock per file, in one statement and in a fixed order, so two
    batches cannot deadlock. SQLite has a single database write lock, taken by a write statement
    that changes nothing. Must be called inside ``transaction.atomic``: outside one, the lock
    would be released at once.
    """
    if not names:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            keys = sorted(
                int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
                for name in set(names)
            )
            # One round trip for a whole batch; the sorted subquery fixes the order the locks are taken in.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(key) "
                "FROM (SELECT unnest(%s::bigint[]) AS key ORDER BY key) AS keys",
                [keys],
            )
        else:
            table = connection.ops.quote_name(Prediction._meta.db_table)
            cursor.execute(f"UPDATE {table} SET id = id WHERE id IS NULL")  # noqa: S608 - a model's table name


def store_shared(files: Sequence[tuple[str, Callable[[], bytes]]]) -> StoredFiles:
    """Lock the names, then write each file that does not exist yet; ``read`` is called only then.

    Call it inside the transaction that inserts the rows referring to these names: the lock is
    held until that transaction ends, so a concurrent delete cannot remove a file between the
    existence check here and the commit. If a write fails, the files written so far are removed
    (still under the lock, so nobody else can have started sharing them) and the error is raised.
    A name given twice is written once: the second sees the first's file.
    """
    lock({name for name, _ in files})
    names: list[str] = []
    written: list[str] = []
    try:
        for requested, read in files:
            name = requested
            if not default_storage.exists(requested):
                data = read()
                # Noted before saving: a save that fails half-way leaves a partial file.
                written.append(requested)
                name = written[-1] = default_storage.save(requested, ContentFile(data))
            names.append(name)
    except BaseException:
        for name in written:
            _delete_file_quietly(name)
        raise
    return StoredFiles(names=names, written=written)


def discard_written(names: Collection[str]) -> None:
    """Remove files that ``store_shared`` wrote for a transaction that then failed.

    Call it after that transaction has ended (rolled back, or failed at commit), outside it: the
    files are then removed unless a committed row refers to one meanwhile (an identical upload
    that arrived after the rollback).
    """
    if not names:
        return
    try:
        _delete_orphaned_files(set(names))
    except DatabaseError:
        # The database cannot be asked whether another request shares a file now. It failed
        # the caller's transaction, so it is most likely down for the others too: removing the
        # files is what keeps "no row, no file" true.
        for name in names:
            _delete_file_quietly(name)


def release_after_delete(names: Collection[str]) -> None:
    """Once the current transaction (which deleted rows referring to ``names``) commits, remove
    each of these files that no committed row still refers to.

    Runs after the commit rather than inside the transaction: a rolled-back delete keeps its
    files, and the files go only once the rows are really gone.
    """
    names = {name for name in names if name}
    if names:
        transaction.on_commit(lambda: _delete_orphaned_files(names))


def _delete_orphaned_files(names: set[str]) -> None:
    with transaction.atomic():
        lock(names)
        still_used = set(Prediction.objects.filter(image__in=names).values_list("image", flat=True))
        for name in sorted(names - still_used):
            _delete_file_quietly(name)


def _delete_file_quietly(name: str) -> None:
    # A file that cannot be removed is logged, not raised: its rows are already gone (or never
    # committed), and failing the request would not bring the file back.
    for doomed in (name, preview_name(name)) if name.endswith(FITS_SUFFIX) else (name,):
        try:
            default_storage.delete(doomed)
        except OSError:
            logger.warning("could not delete stored image %s", doomed, exc_info=True)


# --- FITS previews: a PNG beside the stored FITS file, removed with it ------------------------

FITS_SUFFIX = ".fits"


def preview_name(name: str) -> str:
    """Where the PNG preview of the stored FITS file ``name`` is kept."""
    return f"{name}.png"


def store_preview(name: str, png: bytes) -> None:
    """Keep the rendered preview of the stored FITS file ``name``, unless it is kept already or
    no row refers to the file any more (a delete won the race: the preview would be orphaned).

    Under the file's lock, like an upload, so a delete removes both files or neither has been
    written. A failure is logged, not raised: the caller still has the PNG it rendered.
    """
    preview = preview_name(name)
    try:
        with transaction.atomic():
            lock({name})
            if default_storage.exists(preview) or not Prediction.objects.filter(image=name).exists():
                return
            saved = default_storage.save(preview, ContentFile(png))
            if saved != preview:  # another process wrote it between the check and the save
                default_storage.delete(saved)
    except (DatabaseError, OSError):
        logger.warning("could not store the preview of %s", name, exc_info=True)
