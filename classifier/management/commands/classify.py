import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier import services
from classifier.exceptions import ClassifierError
from classifier.exports import RESULT_COLUMNS, SafeCsvWriter, check_cells
from classifier.galaxy10 import CLASS_NAMES
from classifier.inference import get_classifier


def default_interpreters() -> int:
    # The cores this process may run on (a container's CPU set, not the host's), and no
    # more than 8: every interpreter holds its own weights and activations (docs/benchmarks.md,
    # "Thread counts and interpreters").
    return max(1, min(len(os.sched_getaffinity(0)), 8))


@contextlib.contextmanager
def native_stderr_silenced(*, silenced: bool) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while the model loads, and the app's INFO logs nowhere.

    The TFLite runtime announces its XNNPACK delegate from C++ straight to fd 2, which
    sys.stderr cannot catch; only the loading is wrapped, so errors later still show.
    """
    if not silenced:
        yield
        return
    app_logger = logging.getLogger("classifier")
    level = app_logger.level
    app_logger.setLevel(logging.WARNING)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with Path(os.devnull).open("wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        app_logger.setLevel(level)


class Command(BaseCommand):
    help = (
        "Classify image files or folders (recursively). Writes CSV or JSON to stdout or --output; "
        "--save also records each prediction in the audit log with source 'cli'. A path that does "
        "not exist stops the command before anything is classified."
    )
    # The system checks import the URLconf, admin and API schema (a noticeable share of a bulk
    # run: docs/benchmarks.md, "Bulk") and check the web stack, which this command never uses; the
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
        verbosity = options["verbosity"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if interpreters < 1:
            raise CommandError("--interpreters must be at least 1")
        # Checked before the model loads: a mistyped path should not wait for it.
        files, missing = services.collect_input_files(paths)
        if missing:
            raise CommandError("no such file or directory: " + ", ".join(missing))
        if not files:
            suffixes = " ".join(sorted(services.IMAGE_SUFFIXES))
            raise CommandError(f"no images found (folders are searched for {suffixes})")
        quiet = verbosity == 0
        try:
            with native_stderr_silenced(silenced=quiet):
                get_classifier().use_interpreters(interpreters)
        except ClassifierError as exc:
            raise CommandError(f"the model is unavailable: {exc}") from exc

        rows: list[dict] = []
        failures = 0
        outcomes = services.classify_files(files, save=save, batch_size=batch_size, interpreters=interpreters)
        with tqdm(total=len(files), unit="image", file=sys.stderr, disable=quiet) as progress:
            try:
                for outcome in outcomes:
                    progress.update(1)
                    if outcome.error is not None:
                        failures += 1
                        with progress.external_write_mode(file=sys.stderr):
                            self.stderr.write(f"skipped {outcome.file.path}: {outcome.error}")
                    else:
                        rows.append(self._row(outcome))
            except ClassifierError as exc:
                raise CommandError(f"could not classify: {exc}") from exc
        self._write(rows, output_format=output_format, output=output, verbosity=verbosity)
        if failures:
            raise CommandError(f"{failures} input(s) could not be classified")

    @staticmethod
    def _row(outcome: services.FileOutcome) -> dict:
        result = outcome.prediction or outcome.result
        row = {
            "path": str(outcome.file.path),
            "prediction": result.class_name,
            "class_index": result.class_index,
            "confidence": round(result.confidence, 6),
            "probabilities": {
                name: round(p, 6) for name, p in zip(CLASS_NAMES, result.probabilities, strict=True)
            },
            "in_distribution": result.in_distribution,
            "ood_score": result.ood_score,
            "single_band": result.single_band,
        }
        if outcome.prediction is not None:
            row["id"] = outcome.prediction.pk
        return row

    def _write(self, rows, *, output_format, output, verbosity):
        stream = Path(output).open("w", encoding="utf-8", newline="") if output else self.stdout._out  # noqa: SIM115
        try:
            if output_format == "json":
                json.dump(rows, stream, indent=2)
                stream.write("\n")
            else:
                # File names may come from anyone: quoted and formula-guarded like every export.
                writer = SafeCsvWriter(stream, lineterminator="\n")
                writer.writerow(RESULT_COLUMNS)
                for row in rows:
                    writer.writerow(
                        [
                            row["path"],
                            row["prediction"],
                            row["class_index"],
                            f"{row['confidence']:.6f}",
                            *(f"{row['probabilities'][name]:.6f}" for name in CLASS_NAMES),
                            *check_cells(row["in_distribution"], row["ood_score"], row["single_band"]),
                        ]
                    )
        finally:
            if output:
                stream.close()
        if output and verbosity > 0:
            self.stderr.write(f"wrote {len(rows)} predictions to {output}")
