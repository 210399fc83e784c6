import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier.core.exceptions import ClassifierError, JobInputError, MemberUnreadableError
from classifier.core.galaxy10 import CLASS_NAMES, round_probability
from classifier.jobs.archives import read_zip
from classifier.jobs.members import MemberInput
from classifier.predictions import batch
from classifier.predictions.exports import (
    GALAXY_ZOO_COLUMNS,
    RESULT_COLUMNS,
    SafeCsvWriter,
    check_cells,
    galaxy_zoo_cells,
    probability_cell,
)
from classifier.predictions.inference import get_classifier


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


def _member_reader(member: MemberInput) -> Callable[[], bytes]:
    def read() -> bytes:
        if member.error:  # refused by the archive checks (a nested archive, too large)
            raise OSError(member.error)
        try:
            return member.read()
        except MemberUnreadableError as exc:
            raise OSError(exc.reason) from exc

    return read


def archive_input_files(archive: Path, stack: contextlib.ExitStack) -> tuple[list[batch.InputFile], str]:
    """The members of a .zip as input files, read through the same checks as a job's archive
    (classifier.jobs.archives: size, zip bombs, paths, encryption); the archive stays open on
    ``stack`` while they are classified. Also the name of a catalogue CSV found inside, if any.
    Raises JobInputError when the archive is refused as a whole."""
    handle = stack.enter_context(archive.open("rb"))
    members, catalogue = read_zip(handle, archive_size=archive.stat().st_size)
    if not members:
        raise JobInputError(f"the archive {archive.name!r} has no files to classify")
    files = [batch.InputFile(archive / m.path, m.path, read=_member_reader(m)) for m in members]
    return files, ", ".join(catalogue.columns) if catalogue else ""


class Command(BaseCommand):
    help = (
        "Classify image files, folders (recursively) or .zip archives. Writes CSV or JSON to stdout "
        "or --output; --save also records each prediction in the audit log with source 'cli'. A "
        "path that does not exist, or a .zip refused by the checks a job's archive gets, stops the "
        "command before anything is classified."
    )
    # The system checks import the URLconf, admin and API schema (a noticeable share of a bulk
    # run: docs/benchmarks.md, "Bulk") and check the web stack, which this command never uses; the
    # model is checked by loading it, with its own clear error. `manage.py check` still runs them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Image files, folders or .zip archives.")
        parser.add_argument(
            "--format",
            choices=["csv", "json"],
            default="csv",
            dest="output_format",
            help="csv (default): one row per image, a column per class probability; json: a list of objects.",
        )
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
        with contextlib.ExitStack() as stack:
            files = self._input_files(paths, stack, verbosity=verbosity)
            self._classify(
                files,
                output_format,
                output=output,
                save=save,
                batch_size=batch_size,
                interpreters=interpreters,
                verbosity=verbosity,
            )

    def _input_files(self, paths, stack, *, verbosity) -> list[batch.InputFile]:
        # Checked before the model loads: a mistyped path or a refused archive should not wait for it.
        archives = [Path(p) for p in paths if p.lower().endswith(".zip") and Path(p).is_file()]
        files, missing = batch.collect_input_files([p for p in paths if Path(p) not in archives])
        if missing:
            raise CommandError("no such file or directory: " + ", ".join(missing))
        for archive in archives:
            try:
                members, catalogue = archive_input_files(archive, stack)
            except JobInputError as exc:
                raise CommandError(f"{archive}: {exc.reason}") from exc
            if catalogue and verbosity:
                self.stderr.write(
                    f"{archive}: its catalogue CSV is not used by classify (submit_job uses it)"
                )
            files.extend(members)
        if not files:
            suffixes = " ".join(sorted(batch.IMAGE_SUFFIXES))
            raise CommandError(f"no images found (folders are searched for {suffixes})")
        return files

    def _classify(self, files, output_format, *, output, save, batch_size, interpreters, verbosity):
        quiet = verbosity == 0
        try:
            with native_stderr_silenced(silenced=quiet):
                get_classifier().use_interpreters(interpreters)
        except ClassifierError as exc:
            raise CommandError(f"the model is unavailable: {exc}") from exc

        rows: list[dict] = []
        failures = 0
        outcomes = batch.classify_files(files, save=save, batch_size=batch_size, interpreters=interpreters)
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
    def _row(outcome: batch.FileOutcome) -> dict:
        result = outcome.prediction or outcome.result
        row = {
            "path": str(outcome.file.path),
            "prediction": result.class_name,
            "class_index": result.class_index,
            "confidence": round_probability(result.confidence),
            "probabilities": {
                name: round_probability(p) for name, p in zip(CLASS_NAMES, result.probabilities, strict=True)
            },
            "in_distribution": result.in_distribution,
            "ood_score": result.ood_score,
            "single_band": result.single_band,
        }
        if outcome.prediction is not None:
            row["id"] = outcome.prediction.pk
        # Last, as in the CSV: a reader of the keys before it sees them where they were.
        row["galaxy_zoo"] = result.galaxy_zoo
        return row

    def _write(self, rows, *, output_format, output, verbosity):
        stream = Path(output).open("w", encoding="utf-8", newline="") if output else self.stdout._out  # noqa: SIM115
        try:
            if output_format == "json":
                json.dump(rows, stream, indent=2)
                stream.write("\n")
            else:
                # File names may come from anyone: quoted and formula-guarded like every export.
                writer = SafeCsvWriter(stream)
                writer.writerow((*RESULT_COLUMNS, *GALAXY_ZOO_COLUMNS))
                for row in rows:
                    writer.writerow(
                        [
                            row["path"],
                            row["prediction"],
                            row["class_index"],
                            probability_cell(row["confidence"]),
                            *(probability_cell(row["probabilities"][name]) for name in CLASS_NAMES),
                            *check_cells(row["in_distribution"], row["ood_score"], row["single_band"]),
                            *galaxy_zoo_cells(row["galaxy_zoo"]),
                        ]
                    )
        finally:
            if output:
                stream.close()
        if output and verbosity > 0:
            self.stderr.write(f"wrote {len(rows)} predictions to {output}")
