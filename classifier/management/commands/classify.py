import csv
import io
import json
import os
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier import services
from classifier.exceptions import ClassifierError, ImageValidationError
from classifier.exports import optional_bool, spreadsheet_safe
from classifier.galaxy10 import CLASS_NAMES
from classifier.inference import ClassificationResult, PreparedImage, get_classifier
from classifier.models import Prediction
from classifier.preprocessing import ImageDecodeError

# Inside folders only image files are picked up; a file named explicitly is always tried.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".fits", ".fit", ".fts"}
CSV_COLUMNS = [
    "path",
    "prediction",
    "class_index",
    "confidence",
    *CLASS_NAMES,
    "in_distribution",
    "ood_score",
]


def collect_files(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append((raw, "no such file or directory"))
    return files, missing


def default_interpreters() -> int:
    # The cores this process may run on (a container's CPU set, not the host's), and no
    # more than 8: every interpreter holds its own weights and activations (about 20 MB).
    return max(1, min(len(os.sched_getaffinity(0)), 8))


@dataclass
class ClassifiedBatch:
    """One batch, decoded and classified on a worker thread; recorded (with --save) on the main one."""

    paths: list[Path] = field(default_factory=list)
    accepted: list[services.AcceptedUpload] = field(default_factory=list)
    results: list[ClassificationResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Classify image files or folders (recursively). Writes CSV or JSON to stdout or --output; "
        "--save also records each prediction in the audit log with source 'cli'."
    )
    # The system checks import the URLconf, admin and API schema (about 0.3 s, a sixth of
    # classifying 1,000 images) and check the web stack, which this command never uses; the
    # model is checked by loading it, with its own clear error. `manage.py check` still runs them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Image files or folders.")
        parser.add_argument("--format", choices=["csv", "json"], default="csv", dest="output_format")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument("--save", action="store_true", help="Record the predictions in the audit log.")
        parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="Images per batch.")
        parser.add_argument(
            "--interpreters",
            type=int,
            default=default_interpreters(),
            metavar="N",
            help="Model interpreters run side by side (default: one per available core, at most 8).",
        )

    def handle(self, *args, paths, output_format, output, save, batch_size, interpreters, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if interpreters < 1:
            raise CommandError("--interpreters must be at least 1")
        try:
            classifier = get_classifier()
            classifier.use_interpreters(interpreters)
        except ClassifierError as exc:
            raise CommandError(f"the model is unavailable: {exc}") from exc
        files, failures = collect_files(paths)
        for raw, reason in failures:
            self.stderr.write(f"skipped {raw}: {reason}")

        rows: list[dict] = []
        batches = [files[start : start + batch_size] for start in range(0, len(files), batch_size)]
        classify_batch = self._classify_for_saving if save else self._classify
        progress = tqdm(total=len(files), unit="image", file=sys.stderr, disable=not files)
        # Each worker thread decodes a batch, then classifies it on a free interpreter: Pillow
        # and TFLite release the GIL, so while one thread decodes the others run the model, and
        # every core stays busy. One thread more than interpreters keeps them all fed. Results
        # are taken (and, with --save, recorded on this thread's database connection) in input
        # order, and only a few batches ahead are in flight, so memory stays bounded.
        workers = interpreters + 1
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classify") as pool:
            pending: deque[Future[ClassifiedBatch]] = deque()
            try:
                for batch in batches:
                    pending.append(pool.submit(classify_batch, classifier, batch))
                    if len(pending) < 2 * workers:
                        continue
                    rows.extend(self._finish(pending.popleft().result(), failures, progress, save=save))
                while pending:
                    rows.extend(self._finish(pending.popleft().result(), failures, progress, save=save))
            finally:
                for future in pending:
                    future.cancel()
                progress.close()

        self._write(rows, output_format=output_format, output=output)
        if failures:
            raise CommandError(f"{len(failures)} input(s) could not be classified")

    @staticmethod
    def _classify(classifier, batch: list[Path]) -> ClassifiedBatch:
        done = ClassifiedBatch()
        prepared: list[PreparedImage] = []
        for path in batch:
            try:
                prepared.append(classifier.prepare(path))
            except (ImageDecodeError, OSError) as exc:
                done.skipped.append((str(path), str(exc)))
                continue
            done.paths.append(path)
        if prepared:
            done.results = classifier.classify_prepared(prepared)
        return done

    @staticmethod
    def _classify_for_saving(classifier, batch: list[Path]) -> ClassifiedBatch:
        # The same checks as an upload (size limit, format, decoding), one file at a time so
        # that one bad file is skipped rather than failing its whole batch.
        done = ClassifiedBatch()
        for path in batch:
            try:
                # In memory: the file is read again when the batch is recorded.
                upload = File(io.BytesIO(path.read_bytes()), name=path.name)
                [accepted] = services.validate_uploads([upload])
            except ImageValidationError as exc:
                done.skipped.append((str(path), "; ".join(error["error"] for error in exc.errors)))
                continue
            except OSError as exc:
                done.skipped.append((str(path), str(exc)))
                continue
            done.paths.append(path)
            done.accepted.append(accepted)
        if done.accepted:
            done.results = classifier.classify_prepared([upload.prepared for upload in done.accepted])
        return done

    def _finish(self, done: ClassifiedBatch, failures: list, progress, *, save: bool) -> list[dict]:
        for path, reason in done.skipped:
            failures.append((path, reason))
            self.stderr.write(f"skipped {path}: {reason}")
        progress.update(len(done.paths) + len(done.skipped))
        if not save or not done.paths:
            return [self._row(path, result) for path, result in zip(done.paths, done.results, strict=True)]
        try:
            predictions = services.prediction_create_validated(
                accepted=done.accepted, results=done.results, source=Prediction.Source.CLI
            )
        except ClassifierError as exc:
            raise CommandError(f"could not save: {exc}") from exc
        return [self._row(path, p) for path, p in zip(done.paths, predictions, strict=True)]

    @staticmethod
    def _row(path: Path, result: ClassificationResult | Prediction) -> dict:
        row = {
            "path": str(path),
            "prediction": result.class_name,
            "class_index": result.class_index,
            "confidence": round(result.confidence, 6),
            "probabilities": {
                name: round(p, 6) for name, p in zip(CLASS_NAMES, result.probabilities, strict=True)
            },
            "in_distribution": result.in_distribution,
            "ood_score": result.ood_score,
        }
        if isinstance(result, Prediction):
            row["id"] = result.pk
        return row

    def _write(self, rows, *, output_format, output):
        stream = Path(output).open("w", encoding="utf-8", newline="") if output else self.stdout._out  # noqa: SIM115
        try:
            if output_format == "json":
                json.dump(rows, stream, indent=2)
                stream.write("\n")
            else:
                # File names may come from anyone: quoted and formula-guarded like every export.
                writer = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
                writer.writerow(CSV_COLUMNS)
                for row in rows:
                    writer.writerow(
                        [
                            spreadsheet_safe(row["path"]),
                            row["prediction"],
                            row["class_index"],
                            f"{row['confidence']:.6f}",
                            *(f"{row['probabilities'][name]:.6f}" for name in CLASS_NAMES),
                            optional_bool(row["in_distribution"]),
                            "" if row["ood_score"] is None else f"{row['ood_score']:.3f}",
                        ]
                    )
        finally:
            if output:
                stream.close()
        if output:
            self.stderr.write(f"wrote {len(rows)} predictions to {output}")
