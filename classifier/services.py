"""Writes to the audit log. The one entry point for creating and deleting predictions.

Every caller (pages, API, admin, commands) goes through these functions, so the
validation, the single inference path and the file/row bookkeeping are the same
everywhere.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_noop
from rest_framework.throttling import BaseThrottle

from classifier import observability
from classifier.exceptions import FileRefusal, ImageValidationError, StorageUnavailableError
from classifier.inference import ACCEPTED_FORMATS, ClassificationResult, PreparedImage, get_classifier
from classifier.metadata import strip_metadata
from classifier.models import JobMember, Prediction, prediction_image_path
from classifier.preprocessing import ImageDecodeError

logger = logging.getLogger(__name__)

MAX_FILENAME_LENGTH = 255
FALLBACK_FILENAME = "upload"


def sanitise_filename(name: str | None) -> str:
    """The basename only, without control characters, at most 255 characters.

    The result is safe to store and to show (templates still escape it); it is
    never used as a path, since stored files are named by their content hash.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Category C covers control, format (bidi overrides), NUL and unassigned code points.
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        return FALLBACK_FILENAME
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


@dataclass(frozen=True)
class AcceptedUpload:
    """An upload that passed validation: its safe name, content hash, decoded image, and the
    file it came from (still open), read again only when it is stored."""

    filename: str
    sha256: str
    prepared: PreparedImage
    file: File

    @property
    def data(self) -> bytes:
        # Re-read rather than kept: a batch of large files would otherwise sit in a worker's
        # memory together until the whole batch is recorded (docs/uploads.md).
        return _read_upload(self.file, max_bytes=settings.MAX_UPLOAD_BYTES)


def _read_upload(upload: File, *, max_bytes: int) -> bytes:
    # Read one byte past the limit so an upload whose reported size lies is still caught.
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(max_bytes + 1)
    return data if isinstance(data, bytes) else bytes(data)


def validate_uploads(uploads: Sequence[File]) -> list[AcceptedUpload]:
    """Read, size-check, decode and hash every upload; raises ImageValidationError listing
    each refused file (with too_large set when a file was over the size limit)."""
    max_files = settings.MAX_FILES_PER_REQUEST
    max_bytes = settings.MAX_UPLOAD_BYTES
    if not uploads:
        raise ImageValidationError([FileRefusal("", gettext_noop("no image was uploaded"))])
    if len(uploads) > max_files:
        raise ImageValidationError(
            [
                FileRefusal(
                    "",
                    gettext_noop("%(sent)s files sent, at most %(allowed)s are allowed"),
                    {"sent": len(uploads), "allowed": max_files},
                )
            ]
        )
    classifier = get_classifier()
    accepted: list[AcceptedUpload] = []
    refusals: list[FileRefusal] = []
    too_large = False
    for upload in uploads:
        filename = sanitise_filename(getattr(upload, "name", None))
        declared_size = getattr(upload, "size", None) or 0
        data = b"" if declared_size > max_bytes else _read_upload(upload, max_bytes=max_bytes)
        if declared_size > max_bytes or len(data) > max_bytes:
            too_large = True
            refusals.append(
                FileRefusal(
                    filename,
                    gettext_noop("the file is larger than the limit of %(limit)s bytes"),
                    {"limit": f"{max_bytes:,}"},
                )
            )
            continue
        try:
            prepared = classifier.prepare(data)
        except ImageDecodeError as exc:
            refusals.append(FileRefusal(filename, exc.template, exc.params))
            continue
        accepted.append(
            AcceptedUpload(
                filename=filename, sha256=hashlib.sha256(data).hexdigest(), prepared=prepared, file=upload
            )
        )
        del data
    if refusals:
        raise ImageValidationError(refusals, too_large=too_large)
    return accepted


def prediction_create_batch(
    *,
    uploads: Sequence[File],
    source: str,
    user=None,  # noqa: ANN001 - any user model, or AnonymousUser
    client_ip: str | None = None,
) -> list[Prediction]:
    """Validate every upload, classify them, and record them all or none.

    Raises ImageValidationError (nothing saved) if any file is refused,
    ModelUnavailableError if the model cannot serve, and StorageUnavailableError
    if the database or the media storage fails (no row and no new file is left).
    """
    _check_source(source)
    try:
        accepted = validate_uploads(uploads)
    except ImageValidationError as exc:
        observability.record_refusals(refusal.template for refusal in exc.refusals)
        raise
    return prediction_create_validated(accepted=accepted, source=source, user=user, client_ip=client_ip)


def prediction_create_validated(
    *,
    accepted: Sequence[AcceptedUpload],
    results: Sequence[ClassificationResult] | None = None,
    source: str,
    user=None,  # noqa: ANN001 - any user model, or AnonymousUser
    client_ip: str | None = None,
    job_members: Sequence[JobMember] | None = None,
) -> list[Prediction]:
    """Record uploads that validate_uploads accepted, all or none, classifying them first
    unless ``results`` (from the same process's classifier) are given.

    ``job_members`` (one per upload) links each row to its job and member (source "job").

    For batch jobs that decode and classify on other threads and record on this one,
    without decoding any file twice.
    """
    _check_source(source)
    classifier = get_classifier()
    if results is None:
        results = classifier.classify_prepared([upload.prepared for upload in accepted])
    elif len(results) != len(accepted):
        msg = f"{len(results)} results for {len(accepted)} uploads"
        raise ValueError(msg)
    owner = user if user is not None and getattr(user, "is_authenticated", False) else None
    return _record(
        accepted,
        results,
        source=source,
        user=owner,
        client_ip=client_ip or None,
        model_version=classifier.model_version,
        model_sha256=classifier.model_sha256,
        job_members=job_members,
    )


def _check_source(source: str) -> None:
    if source not in Prediction.Source.values:
        msg = f"unknown prediction source {source!r}"
        raise ValueError(msg)


def _record(
    accepted: Sequence[AcceptedUpload],
    results: Sequence[ClassificationResult],
    *,
    source: str,
    user,  # noqa: ANN001
    client_ip: str | None,
    model_version: str,
    model_sha256: str,
    job_members: Sequence[JobMember] | None = None,
) -> list[Prediction]:
    written: list[str] = []
    predictions: list[Prediction] = []
    members = job_members if job_members is not None else [None] * len(accepted)
    try:
        with transaction.atomic():
            pending = []
            for upload, result, member in zip(accepted, results, members, strict=True):
                prediction = Prediction(
                    original_filename=upload.filename,
                    sha256=upload.sha256,
                    width=result.width,
                    height=result.height,
                    class_index=result.class_index,
                    class_name=result.class_name,
                    confidence=result.confidence,
                    probabilities=list(result.probabilities),
                    model_version=model_version,
                    model_sha256=model_sha256,
                    inference_ms=result.inference_ms,
                    in_distribution=result.in_distribution,
                    ood_score=result.ood_score,
                    source=source,
                    user=user,
                    client_ip=client_ip,
                    job_id=member.job_id if member else None,
                    job_member=member,
                )
                extension = ACCEPTED_FORMATS[upload.prepared.image_format]
                prediction.image.name = prediction_image_path(prediction, f"image.{extension}")
                pending.append((prediction, upload))
            # Held until commit: a concurrent delete of the last row sharing one of these
            # files cannot remove it between the existence check and this commit.
            _lock_stored_images({prediction.image.name for prediction, _ in pending})
            try:
                for prediction, upload in pending:
                    # Identical content is stored once and shared by every row that refers to it.
                    if not default_storage.exists(prediction.image.name):
                        stored = strip_metadata(upload.data, upload.prepared.image_format)
                        # Noted before saving: a save that fails half-way leaves a partial file.
                        written.append(prediction.image.name)
                        name = default_storage.save(prediction.image.name, ContentFile(stored))
                        written[-1] = prediction.image.name = name
                # One INSERT for the whole batch; the ids come back with it (RETURNING).
                predictions = Prediction.objects.bulk_create([prediction for prediction, _ in pending])
            except BaseException:
                # Still under the lock, so no other writer can have started sharing these files.
                for name in written:
                    _delete_file_quietly(name)
                written.clear()
                raise
    except (DatabaseError, OSError) as exc:
        # Files left here were written by a transaction whose commit failed.
        _discard_unreferenced(written)
        kind = "database" if isinstance(exc, DatabaseError) else "media storage"
        logger.exception("could not record %d prediction(s): %s failed", len(accepted), kind)
        raise StorageUnavailableError(f"the {kind} is unavailable, nothing was saved") from exc
    except BaseException:
        _discard_unreferenced(written)
        raise
    observability.record_predictions(predictions)
    return predictions


def _lock_stored_images(names: set[str]) -> None:
    """Serialise, until the end of the current transaction, every writer and deleter of these files.

    Stored files are shared by content hash, so "is this file still referenced?" and
    "the file exists, I will refer to it" must not interleave across requests or
    processes. PostgreSQL takes one advisory lock per file, in one statement and in a
    fixed order, so two batches cannot deadlock; SQLite has a single database write lock, taken by a
    write statement that changes nothing.
    """
    if not names:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            keys = sorted(
                int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
                for name in names
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


def _delete_file_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("could not delete stored image %s", name, exc_info=True)


def _delete_orphaned_files(names: set[str]) -> None:
    """Delete each file that no committed prediction refers to (runs after the delete commits)."""
    with transaction.atomic():
        _lock_stored_images(names)
        still_used = set(Prediction.objects.filter(image__in=names).values_list("image", flat=True))
        for name in sorted(names - still_used):
            _delete_file_quietly(name)


def _discard_unreferenced(names: list[str]) -> None:
    if not names:
        return
    try:
        _delete_orphaned_files(set(names))
    except DatabaseError:
        # The database cannot be asked whether another request shares a file now.
        # It failed this request's commit, so it is most likely down for the others
        # too: removing the file is what keeps "no row, no file" true.
        for name in names:
            _delete_file_quietly(name)


def prediction_delete(*, prediction: Prediction) -> None:
    with transaction.atomic():
        name = prediction.image.name
        prediction.delete()
        if name:
            transaction.on_commit(lambda: _delete_orphaned_files({name}))


def prediction_delete_many(*, queryset: QuerySet[Prediction]) -> int:
    with transaction.atomic():
        # The filter is re-evaluated on the ids so a sliced or annotated queryset deletes exactly its rows.
        ids = list(queryset.values_list("pk", flat=True))
        doomed = Prediction.objects.filter(pk__in=ids)
        names = {name for name in doomed.values_list("image", flat=True) if name}
        deleted, _ = doomed.delete()
        if names:
            transaction.on_commit(lambda: _delete_orphaned_files(names))
    return deleted


def predictions_reset() -> int:
    """Delete every prediction and its image, and restart the id sequence at 1."""
    with transaction.atomic():
        deleted = prediction_delete_many(queryset=Prediction.objects.all())
        table = Prediction._meta.db_table
        with connection.cursor() as cursor:
            sequences = connection.introspection.get_sequences(cursor, table, Prediction._meta.local_fields)
            for statement in connection.ops.sequence_reset_by_name_sql(no_style(), sequences):
                cursor.execute(statement)
    return deleted


def request_client_ip(request) -> str | None:  # noqa: ANN001
    """The caller's address, by the one rule the rate limits and the login lockout use too:
    the connecting address, or behind TRUSTED_PROXY_HOPS proxies the X-Forwarded-For entry
    that the outermost trusted proxy appended (DRF's NUM_PROXIES rule)."""
    try:
        return str(ipaddress.ip_address(BaseThrottle().get_ident(request)))
    except ValueError:
        return None
