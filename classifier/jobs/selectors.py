"""Reads of jobs and their results, with who may see what."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.utils import timezone

from classifier.core.galaxy10 import CLASS_NAMES, round_probability
from classifier.core.galaxy_zoo import in_canonical_order
from classifier.models import Job, JobMember, Prediction
from classifier.predictions.exports import (
    GALAXY_ZOO_COLUMNS,
    RESULT_COLUMNS,
    SafeCsvWriter,
    check_cells,
    galaxy_zoo_cells,
    probability_cell,
)
from classifier.predictions.filters import JobGalleryFilter
from classifier.predictions.votable import vo_column, votable_from_rows, write_votable

# After the columns of `manage.py classify` (exports.RESULT_COLUMNS), the member's status and
# reason; catalogue columns follow.
STATUS_COLUMNS = ("status", "error")
# After those, for a catalogue of positions: where each cutout was fetched.
POSITION_COLUMNS = ("cutout_url",)


def _check_reader(user: Any) -> None:
    if user is not None and not getattr(user, "is_authenticated", False):
        raise PermissionDenied("log in to use classification jobs")


def job_list(*, user: Any = None) -> QuerySet[Job]:
    """The reader's own jobs, or every job for staff and internal callers (user None)."""
    _check_reader(user)
    jobs = Job.objects.select_related("user")
    if user is not None and not user.is_staff:
        jobs = jobs.filter(user=user)
    return jobs


def job_get(*, pk: int, user: Any = None) -> Job:
    """One job the reader may see; raises Job.DoesNotExist otherwise (no hint that it exists)."""
    return job_list(user=user).get(pk=pk)


def job_rate(job: Job) -> float | None:
    """Members finished per second since the job started."""
    if job.started_at is None:
        return None
    end = job.finished_at or timezone.now()
    seconds = (end - job.started_at).total_seconds()
    return round(job.finished_members / seconds, 2) if seconds > 0 else None


def job_class_counts(job: Job) -> list[dict[str, Any]]:
    """How many members fell in each class, for every class (zeros included)."""
    counts = dict(
        Prediction.objects.filter(job=job).values_list("class_index").annotate(n=Count("id")).order_by()
    )
    total = sum(counts.values())
    return [
        {
            "class_index": index,
            "name": name,
            "count": counts.get(index, 0),
            "fraction": counts.get(index, 0) / total if total else 0.0,
        }
        for index, name in enumerate(CLASS_NAMES)
    ]


def job_gallery_filterset(*, job: Job, filters: Mapping[str, Any] | None = None) -> JobGalleryFilter:
    """The job's galaxies (its classified members), filtered and ordered as ``filters`` ask.

    The caller has already checked, through job_get, that the reader may see the job."""
    # Submission order unless the reader sorts otherwise.
    predictions = (
        Prediction.objects.filter(job=job).select_related("job_member").order_by("job_member__index")
    )
    return JobGalleryFilter(data=filters or None, queryset=predictions)


def job_catalogue_id_column(job: Job) -> str | None:
    """The catalogue column that names each galaxy (``id``, ``objid``, ``name``...), by the
    VOTable's rule (UCD meta.id); None when the catalogue has none."""
    for column in job.catalogue_columns:
        if vo_column(column, catalogue=True).ucd == "meta.id":
            return column
    return None


def job_results(job: Job) -> Iterator[dict[str, Any]]:
    """One record per member, in submission order, classified or not."""
    members = JobMember.objects.filter(job=job).select_related("prediction").order_by("index")
    for member in members.iterator(chunk_size=1000):
        prediction = (
            getattr(member, "prediction", None) if member.status == JobMember.Status.CLASSIFIED else None
        )
        record: dict[str, Any] = {
            "path": member.path,
            "status": member.status,
            "error": member.error,
            "prediction": None,
            "class_index": None,
            "confidence": None,
            "probabilities": None,
            "in_distribution": None,
            "ood_score": None,
            "single_band": None,
            "prediction_id": None,
            "cutout_url": "",
            "catalogue": {column: member.catalogue.get(column, "") for column in job.catalogue_columns},
            "galaxy_zoo": None,
        }
        if prediction is not None:
            record.update(
                prediction=prediction.class_name,
                class_index=prediction.class_index,
                confidence=round_probability(prediction.confidence),
                probabilities={
                    name: round_probability(p)
                    for name, p in zip(CLASS_NAMES, prediction.probabilities, strict=True)
                },
                in_distribution=prediction.in_distribution,
                ood_score=prediction.ood_score,
                single_band=prediction.single_band,
                prediction_id=prediction.pk,
                cutout_url=prediction.cutout_url,
                galaxy_zoo=in_canonical_order(prediction.galaxy_zoo),
            )
        yield record


def job_results_columns(job: Job) -> list[str]:
    """The columns of every tabular export of the results (CSV, VOTable): classify's columns,
    status and error, then the catalogue's; for a catalogue of positions, the catalogue's
    columns first (the astronomer's table, extended), then the answers and the cutout URL.
    The Galaxy Zoo answers come last in both, so the columns before them keep their places."""
    if job.by_position:
        return [
            *job.catalogue_columns,
            *RESULT_COLUMNS,
            *STATUS_COLUMNS,
            *POSITION_COLUMNS,
            *GALAXY_ZOO_COLUMNS,
        ]
    return [*RESULT_COLUMNS, *STATUS_COLUMNS, *job.catalogue_columns, *GALAXY_ZOO_COLUMNS]


def _catalogue_span(job: Job) -> tuple[int, int]:
    """Where the catalogue's columns lie in job_results_columns: [start, stop)."""
    start = 0 if job.by_position else len(RESULT_COLUMNS) + len(STATUS_COLUMNS)
    return start, start + len(job.catalogue_columns)


def job_results_rows(job: Job) -> Iterator[list[object]]:
    """One row per member under job_results_columns, as text and numbers; empty for unknown."""
    for record in job_results(job):
        probabilities = record["probabilities"]
        catalogue = [str(record["catalogue"][c]) for c in job.catalogue_columns]
        answers = [
            record["path"],
            record["prediction"] or "",
            "" if record["class_index"] is None else record["class_index"],
            "" if record["confidence"] is None else probability_cell(record["confidence"]),
            *(probability_cell(probabilities[name]) if probabilities else "" for name in CLASS_NAMES),
            *check_cells(record["in_distribution"], record["ood_score"], record["single_band"]),
            record["status"],
            record["error"],
        ]
        row = [*catalogue, *answers, record["cutout_url"]] if job.by_position else [*answers, *catalogue]
        yield [*row, *galaxy_zoo_cells(record["galaxy_zoo"])]


class _Echo:
    def write(self, value: str) -> str:
        return value


def job_results_csv(job: Job) -> Iterator[str]:
    """The results as CSV lines, streamed.

    The catalogue's column names came with the submission: the header is escaped as the cells are.
    """
    writer = SafeCsvWriter(_Echo())
    yield writer.writerow(job_results_columns(job))
    for row in job_results_rows(job):
        yield writer.writerow(row)


def job_results_votable(job: Job, stream: BinaryIO) -> None:
    """The results as a VOTable, with the CSV's columns, their units and UCDs, written to ``stream``."""
    catalogue_from, catalogue_to = _catalogue_span(job)
    votable = votable_from_rows(
        job_results_columns(job),
        job_results_rows(job),
        catalogue_from=catalogue_from,
        catalogue_to=catalogue_to,
        name=f"job_{job.pk}_results",
        description=f"Galaxy10 DECaLS classes of the files of job {job.pk} ({job.name}).",
        infos=[
            ("job_id", str(job.pk)),
            ("job_name", job.name),
            ("job_status", job.status),
            ("model_version", job.model_version),
        ],
    )
    write_votable(votable, stream)
