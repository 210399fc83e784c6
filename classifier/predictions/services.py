"""Writes to the audit log. The one entry point for creating and deleting predictions.

Every caller (pages, API, admin, commands) goes through these functions, so the
validation, the single inference path and the file/row bookkeeping are the same
everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import ipaddress
import logging
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_noop
from rest_framework.throttling import BaseThrottle

from classifier.core.exceptions import Count, FileRefusal, ImageValidationError, StorageUnavailableError
from classifier.core.inference import (
    ACCEPTED_FORMATS,
    ClassificationResult,
    GalaxyClassifier,
    PreparedImage,
    get_classifier,
)
from classifier.core.metadata import strip_metadata
from classifier.core.preprocessing import ImageDecodeError
from classifier.models import JobMember, Prediction, prediction_image_path
from classifier.ops import observability
from classifier.predictions import cutouts, storage

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
                    {"limit": Count(max_bytes)},
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
    _check_source(source)
    classifier = get_classifier()
    results = classifier.classify_prepared([upload.prepared for upload in accepted])
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
        provenance=provenance,
    )


def accept_cutout(*, ra: object, dec: object) -> tuple[AcceptedUpload, SkyProvenance]:
    """Fetch and validate the cutout at a position, as an upload would be validated.

    Raises cutouts.PositionError for coordinates that are not a position, NoImagingError
    where the survey has no imaging (a 404 or a blank cutout), and CutoutUnavailableError
    when the service fails or sends something that is not an image.
    """
    position = cutouts.parse_position(ra, dec)
    cutout = cutouts.fetch_cutout(position)
    name = f"ra{position.ra:.6f}_dec{position.dec:+.6f}.jpg"
    try:
        [accepted] = validate_uploads([File(io.BytesIO(cutout.data), name=name)])
    except ImageValidationError as exc:
        reason = "; ".join(error["error"] for error in exc.errors)
        raise cutouts.CutoutUnavailableError(f"the cutout service sent an unusable image: {reason}") from exc
    if cutouts.is_blank(cutout.data):
        raise cutouts.NoImagingError(
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
    _check_source(source)
    accepted, provenance = accept_cutout(ra=ra, dec=dec)
    [prediction] = prediction_create_validated(
        accepted=[accepted], source=source, user=user, client_ip=client_ip, provenance=[provenance]
    )
    return prediction


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
    observability.record_predictions(predictions)
    return predictions


def _fits_centre(upload: AcceptedUpload) -> SkyProvenance | None:
    centre = getattr(upload.prepared, "sky_centre", None)
    return SkyProvenance(ra=centre[0], dec=centre[1]) if centre is not None else None


def _stored_bytes(upload: AcceptedUpload) -> Callable[[], bytes]:
    # Read (and stripped of metadata) only if the file is not stored yet.
    return lambda: strip_metadata(upload.data, upload.prepared.image_format)


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


def request_client_ip(request) -> str | None:  # noqa: ANN001
    """The caller's address, by the one rule the rate limits and the login lockout use too:
    the connecting address, or behind TRUSTED_PROXY_HOPS proxies the X-Forwarded-For entry
    that the outermost trusted proxy appended (DRF's NUM_PROXIES rule)."""
    try:
        return str(ipaddress.ip_address(BaseThrottle().get_ident(request)))
    except ValueError:
        return None


# --- Classifying files on disk (manage.py classify) ---------------------------------------

# Inside folders only image files are picked up; a file named explicitly is always tried.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".fits", ".fit", ".fts"}
)


@dataclass(frozen=True)
class InputFile:
    """A file to classify and the name it is shown and recorded under: its path inside the
    folder it was found in, so that files of the same name in two subfolders stay apart.

    ``read`` replaces reading ``path`` for a file that is not on disk by itself (a member of
    a .zip): it returns at most MAX_UPLOAD_BYTES + 1 bytes, or raises OSError with the reason
    the file cannot be classified.
    """

    path: Path
    name: str
    read: Callable[[], bytes] | None = None


@dataclass(frozen=True)
class FileOutcome:
    """One input file's outcome: its result (and, when saved, its row), or why it was refused."""

    file: InputFile
    result: ClassificationResult | None = None
    prediction: Prediction | None = None
    error: str | None = None


def collect_input_files(paths: Sequence[str]) -> tuple[list[InputFile], list[str]]:
    """The image files under each path (folders recursively, in name order) and the paths
    that do not exist."""
    files: list[InputFile] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            files.extend(InputFile(p, sanitise_relative_name(p.relative_to(path).as_posix())) for p in found)
        elif path.is_file():
            files.append(InputFile(path, sanitise_filename(path.name)))
        else:
            missing.append(raw)
    return files, missing


def sanitise_relative_name(name: str) -> str:
    """A relative path, each part cleaned as sanitise_filename does, at most 255 characters
    (the folders nearest the root are dropped first, the file's own name is kept)."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    cleaned = [sanitise_filename(part) for part in parts] or [FALLBACK_FILENAME]
    while len(cleaned) > 1 and len("/".join(cleaned)) > MAX_FILENAME_LENGTH:
        cleaned.pop(0)
    return "/".join(cleaned)


def classify_files(
    files: Sequence[InputFile],
    *,
    save: bool,
    batch_size: int = 8,
    interpreters: int = 1,
    source: str = Prediction.Source.CLI,
) -> Iterator[FileOutcome]:
    """Validate and classify files, yielding one outcome per file in input order; with
    ``save`` each batch is recorded (all its accepted files or none) before it is yielded.

    Every file gets an upload's checks (size limit, format, decoding) whether or not it is
    saved; a refused file is an outcome with its reason, not an exception. Raises
    ModelUnavailableError if the model cannot serve and StorageUnavailableError if saving fails.
    """
    if batch_size < 1 or interpreters < 1:
        msg = "batch_size and interpreters must be at least 1"
        raise ValueError(msg)
    _check_source(source)
    classifier = get_classifier()
    classifier.use_interpreters(interpreters)
    batches = [files[start : start + batch_size] for start in range(0, len(files), batch_size)]
    # Each worker thread decodes a batch, then classifies it on a free interpreter: Pillow
    # and TFLite release the GIL, so while one thread decodes the others run the model, and
    # every core stays busy. One thread more than interpreters keeps them all fed. Batches are
    # taken (and recorded, on this thread's database connection) in input order, and only a
    # few are in flight, so memory stays bounded.
    workers = interpreters + 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classify") as pool:
        pending: deque[Future[list[_ClassifiedFile]]] = deque()
        try:
            for batch in batches:
                pending.append(pool.submit(_classify_batch, classifier, batch))
                if len(pending) >= 2 * workers:
                    yield from _finish_batch(pending.popleft().result(), classifier, save=save, source=source)
            while pending:
                yield from _finish_batch(pending.popleft().result(), classifier, save=save, source=source)
        finally:
            for future in pending:
                future.cancel()


@dataclass(frozen=True)
class _ClassifiedFile:
    file: InputFile
    accepted: AcceptedUpload | None = None
    result: ClassificationResult | None = None
    error: str | None = None


def _classify_batch(classifier: GalaxyClassifier, batch: Sequence[InputFile]) -> list[_ClassifiedFile]:
    # One file at a time through validate_uploads, so that one bad file is refused rather
    # than failing its whole batch; each file is decoded once, here, saved or not.
    checked: list[_ClassifiedFile] = []
    for item in batch:
        try:
            [accepted] = validate_uploads([_read_input_file(item)])
        except ImageValidationError as exc:
            checked.append(_ClassifiedFile(item, error="; ".join(error["error"] for error in exc.errors)))
            continue
        except OSError as exc:
            checked.append(_ClassifiedFile(item, error=exc.strerror or str(exc)))
            continue
        checked.append(_ClassifiedFile(item, accepted=dataclasses.replace(accepted, filename=item.name)))
    ok = [entry for entry in checked if entry.accepted is not None]
    results = iter(classifier.classify_prepared([entry.accepted.prepared for entry in ok]) if ok else [])
    return [
        dataclasses.replace(entry, result=next(results)) if entry.accepted is not None else entry
        for entry in checked
    ]


def _read_input_file(item: InputFile) -> File:
    # At most one byte past the limit is read, so a huge file costs no memory before it is
    # refused; kept in memory (not reopened) so that what is stored is what was classified.
    if item.read is not None:
        return File(io.BytesIO(item.read()), name=item.name)
    with item.path.open("rb") as handle:
        data = handle.read(settings.MAX_UPLOAD_BYTES + 1)
    return File(io.BytesIO(data), name=item.name)


def _finish_batch(
    batch: list[_ClassifiedFile], classifier: GalaxyClassifier, *, save: bool, source: str
) -> list[FileOutcome]:
    ok = [entry for entry in batch if entry.accepted is not None]
    rows: dict[int, Prediction] = {}
    if save and ok:
        predictions = _record(
            [entry.accepted for entry in ok],
            [entry.result for entry in ok],
            source=source,
            user=None,
            client_ip=None,
            model_version=classifier.model_version,
            model_sha256=classifier.model_sha256,
        )
        rows = {id(entry): prediction for entry, prediction in zip(ok, predictions, strict=True)}
    return [
        FileOutcome(entry.file, result=entry.result, prediction=rows.get(id(entry)), error=entry.error)
        for entry in batch
    ]
