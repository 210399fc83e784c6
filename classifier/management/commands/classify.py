import csv
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier import services
from classifier.exceptions import ClassifierError, ImageValidationError
from classifier.galaxy10 import CLASS_NAMES
from classifier.inference import ClassificationResult, PreparedImage, get_classifier
from classifier.models import Prediction
from classifier.preprocessing import ImageDecodeError

# Inside folders only image files are picked up; a file named explicitly is always tried.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp"}
CSV_COLUMNS = ["path", "prediction", "class_index", "confidence", *CLASS_NAMES]


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
        parser.add_argument("--batch-size", type=int, default=16, metavar="N", help="Images per model call.")

    def handle(self, *args, paths, output_format, output, save, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            classifier = get_classifier()
        except ClassifierError as exc:
            raise CommandError(f"the model is unavailable: {exc}") from exc
        files, failures = collect_files(paths)
        for raw, reason in failures:
            self.stderr.write(f"skipped {raw}: {reason}")

        rows: list[dict] = []
        batches = [files[start : start + batch_size] for start in range(0, len(files), batch_size)]
        progress = tqdm(total=len(files), unit="image", file=sys.stderr, disable=not files)
        # Decoding the next batch overlaps classifying this one: Pillow and the TFLite
        # interpreter both release the GIL, so the two stages use both cores.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify-decode") as decoder:
            try:
                upcoming = decoder.submit(self._prepare, classifier, batches[0]) if batches else None
                for index, batch in enumerate(batches):
                    prepared, skipped = upcoming.result()
                    if index + 1 < len(batches):
                        upcoming = decoder.submit(self._prepare, classifier, batches[index + 1])
                    for path, reason in skipped:
                        failures.append((path, reason))
                        self.stderr.write(f"skipped {path}: {reason}")
                    if prepared:
                        rows.extend(self._classify(classifier, prepared, save=save))
                    progress.update(len(batch))
            finally:
                progress.close()

        self._write(rows, output_format=output_format, output=output)
        if failures:
            raise CommandError(f"{len(failures)} input(s) could not be classified")

    @staticmethod
    def _prepare(
        classifier, batch: list[Path]
    ) -> tuple[list[tuple[Path, PreparedImage]], list[tuple[str, str]]]:
        prepared: list[tuple[Path, PreparedImage]] = []
        skipped: list[tuple[str, str]] = []
        for path in batch:
            try:
                prepared.append((path, classifier.prepare(path)))
            except (ImageDecodeError, OSError) as exc:
                skipped.append((str(path), str(exc)))
        return prepared, skipped

    def _classify(self, classifier, prepared, *, save):
        if not save:
            results = classifier.classify_prepared([image for _, image in prepared])
            return [self._row(path, result) for (path, _), result in zip(prepared, results, strict=True)]
        handles = [path.open("rb") for path, _ in prepared]
        try:
            uploads = [
                File(handle, name=path.name) for handle, (path, _) in zip(handles, prepared, strict=True)
            ]
            try:
                predictions = services.prediction_create_batch(uploads=uploads, source=Prediction.Source.CLI)
            except (ImageValidationError, ClassifierError) as exc:
                raise CommandError(f"could not save: {exc}") from exc
        finally:
            for handle in handles:
                handle.close()
        return [self._row(path, p) for (path, _), p in zip(prepared, predictions, strict=True)]

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
                writer = csv.writer(stream, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
                for row in rows:
                    writer.writerow(
                        [
                            row["path"],
                            row["prediction"],
                            row["class_index"],
                            f"{row['confidence']:.6f}",
                            *(f"{row['probabilities'][name]:.6f}" for name in CLASS_NAMES),
                        ]
                    )
        finally:
            if output:
                stream.close()
        if output:
            self.stderr.write(f"wrote {len(rows)} predictions to {output}")
