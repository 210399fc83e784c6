"""Classifying files on disk (manage.py classify): the same checks and inference as an upload,
in batches over a few interpreters, each batch recorded (or not) as a unit."""

from __future__ import annotations

import dataclasses
import io
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File

from classifier.core.exceptions import ImageValidationError
from classifier.core.formats import IMAGE_SUFFIXES
from classifier.models import Prediction
from classifier.predictions.filenames import sanitise_filename, sanitise_relative_name
from classifier.predictions.inference import ClassificationResult, GalaxyClassifier, get_classifier
from classifier.predictions.services import AcceptedUpload, check_source, predictions_record, validate_uploads


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
            # Inside folders only image files are picked up; a file named explicitly is always tried.
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            files.extend(InputFile(p, sanitise_relative_name(p.relative_to(path).as_posix())) for p in found)
        elif path.is_file():
            files.append(InputFile(path, sanitise_filename(path.name)))
        else:
            missing.append(raw)
    return files, missing


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
    check_source(source)
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
        predictions = predictions_record(
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
