"""Writes to the audit log. The one entry point for creating and deleting predictions.

Every caller (pages, API, admin, commands) goes through these functions, so the
validation, the single inference path and the file/row bookkeeping are the same
everywhere.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from classifier.core.exceptions import (
    CutoutUnavailableError,
    FileRefusal,
    GroupedNumber,
    ImageValidationError,
    NoImagingError,
    StorageUnavailableError,
)
from classifier.core.metadata import strip_metadata
from classifier.core.positions import parse_position
from classifier.core.preprocessing import ImageDecodeError
from classifier.models import JobMember, Prediction, prediction_image_path
from classifier.ops import metrics
from classifier.predictions import cutouts, storage
from classifier.predictions.filenames import sanitise_filename
from classifier.predictions.inference import (
    ACCEPTED_FORMATS,
    ClassificationResult,
    PreparedImage,
    get_classifier,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkyProvenance:
    """Where on the sky an image is, and the cutout URL it was fetched from ("" for an upload)."""

    ra: float
    dec: float
    cutout_url: str = ""


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
                    {"limit": GroupedNumber(max_bytes)},
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
    check_source(source)
    try:
        accepted = validate_uploads(uploads)
    except ImageValidationError as exc:
        metrics.record_refusals(refusal.code for refusal in exc.refusals)
        raise
    return prediction_create_validated(accepted=accepted, source=source, user=user, client_ip=client_ip)


def prediction_create_validated(
    *,
    accepted: Sequence[AcceptedUpload],
    source: str,
    user=None,  # noqa: ANN001 - any user model, or AnonymousUser
    client_ip: str | None = None,
    job_members: Sequence[JobMember] | None = None,
    provenance: Sequence[SkyProvenance | None] | None = None,
) -> list[Prediction]:
    """Classify uploads that validate_uploads accepted and record them, all or none.

    ``job_members`` (one per upload) links each row to its job and member (source "job");
    ``provenance`` (one per upload, or None) records where on the sky each image is.
    """
    check_source(source)
    classifier = get_classifier()
    results = classifier.classify_prepared([upload.prepared for upload in accepted])
    owner = user if user is not None and getattr(user, "is_authenticated", False) else None
    return predictions_record(
        accepted,
        results,
        source=source,
        user=owner,
        client_ip=client_ip or None,
        model_version=classifier.model_version,
        model_sha256=classifier.model_sha256,
        job_members=job_members,
        provenance=provenance,
    )


def accept_cutout(*, ra: object, dec: object) -> tuple[AcceptedUpload, SkyProvenance]:
    """Fetch and validate the cutout at a position, as an upload would be validated.

    Raises PositionError for coordinates that are not a position, NoImagingError
    where the survey has no imaging (a 404 or a blank cutout), and CutoutUnavailableError
    when the service fails or sends something that is not an image.
    """
    position = parse_position(ra, dec)
    cutout = cutouts.fetch_cutout(position)
    name = f"ra{position.ra:.6f}_dec{position.dec:+.6f}.jpg"
    try:
        [accepted] = validate_uploads([File(io.BytesIO(cutout.data), name=name)])
    except ImageValidationError as exc:
        reason = "; ".join(error["error"] for error in exc.errors)
        raise CutoutUnavailableError(f"the cutout service sent an unusable image: {reason}") from exc
    if cutouts.is_blank(cutout.data):
        raise NoImagingError(
            f"the survey has no imaging at this position (the cutout is blank: at least "
            f"{cutouts.BLANK_FRACTION:.0%} of its pixels are one colour)",
            url=cutout.url,
        )
    return accepted, SkyProvenance(ra=position.ra, dec=position.dec, cutout_url=cutout.url)


def prediction_create_from_position(
    *,
    ra: object,
    dec: object,
    source: str,
    user=None,  # noqa: ANN001 - any user model, or AnonymousUser
    client_ip: str | None = None,
) -> Prediction:
    """Fetch the survey's cutout at (ra, dec) in degrees, classify it and record it with its
    position and cutout URL. Nothing is written unless every step succeeds (accept_cutout
    lists the errors)."""
    check_source(source)
    accepted, provenance = accept_cutout(ra=ra, dec=dec)
    [prediction] = prediction_create_validated(
        accepted=[accepted], source=source, user=user, client_ip=client_ip, provenance=[provenance]
    )
    return prediction


def check_source(source: str) -> None:
    if source not in Prediction.Source.values:
        msg = f"unknown prediction source {source!r}"
        raise ValueError(msg)


def predictions_record(
    accepted: Sequence[AcceptedUpload],
    results: Sequence[ClassificationResult],
    *,
    source: str,
    user,  # noqa: ANN001
    client_ip: str | None,
    model_version: str,
    model_sha256: str,
    job_members: Sequence[JobMember] | None = None,
    provenance: Sequence[SkyProvenance | None] | None = None,
) -> list[Prediction]:
    written: list[str] = []
    members = job_members if job_members is not None else [None] * len(accepted)
    given = provenance if provenance is not None else [None] * len(accepted)
    places = [place or _fits_centre(upload) for upload, place in zip(accepted, given, strict=True)]
    try:
        with transaction.atomic():
            pending = []
            for upload, result, member, place in zip(accepted, results, members, places, strict=True):
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
                    single_band=result.single_band,
                    bands_assumed=result.bands_assumed,
                    galaxy_zoo=result.galaxy_zoo,
                    source=source,
                    user=user,
                    client_ip=client_ip,
                    job_id=member.job_id if member else None,
                    job_member=member,
                    ra=place.ra if place else None,
                    dec=place.dec if place else None,
                    cutout_url=place.cutout_url if place else "",
                )
                extension = ACCEPTED_FORMATS[upload.prepared.image_format]
                prediction.image.name = prediction_image_path(prediction, f"image.{extension}")
                pending.append((prediction, upload))
            # Identical content is stored once and shared by every row that refers to it (storage.py).
            stored = storage.store_shared(
                [(prediction.image.name, _stored_bytes(upload)) for prediction, upload in pending]
            )
            written = stored.written
            for (prediction, _), name in zip(pending, stored.names, strict=True):
                prediction.image.name = name
            # One INSERT for the whole batch; the ids come back with it (RETURNING).
            predictions = Prediction.objects.bulk_create([prediction for prediction, _ in pending])
    except (DatabaseError, OSError) as exc:
        storage.discard_written(written)
        kind = "database" if isinstance(exc, DatabaseError) else "media storage"
        logger.exception("could not record %d prediction(s): %s failed", len(accepted), kind)
        raise StorageUnavailableError(f"the {kind} is unavailable, nothing was saved") from exc
    except BaseException:
        storage.discard_written(written)
        raise
    metrics.record_predictions(predictions)
    return predictions


def _fits_centre(upload: AcceptedUpload) -> SkyProvenance | None:
    centre = getattr(upload.prepared, "sky_centre", None)
    return SkyProvenance(ra=centre[0], dec=centre[1]) if centre is not None else None


def _stored_bytes(upload: AcceptedUpload) -> Callable[[], bytes]:
    # Read (and stripped of metadata) only if the file is not stored yet.
    prepared = upload.prepared
    return lambda: strip_metadata(upload.data, prepared.image_format, fits_headers=prepared.fits_headers)


def prediction_delete(*, prediction: Prediction) -> None:
    with transaction.atomic():
        name = prediction.image.name
        prediction.delete()
        storage.release_after_delete({name})


def prediction_delete_many(*, queryset: QuerySet[Prediction]) -> int:
    with transaction.atomic():
        # The filter is re-evaluated on the ids so a sliced or annotated queryset deletes exactly its rows.
        ids = list(queryset.values_list("pk", flat=True))
        doomed = Prediction.objects.filter(pk__in=ids)
        names = {name for name in doomed.values_list("image", flat=True) if name}
        deleted, _ = doomed.delete()
        storage.release_after_delete(names)
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
