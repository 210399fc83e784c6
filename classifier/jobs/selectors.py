"""Reads of jobs and their results, with who may see what."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.utils import timezone

from classifier.exports import RESULT_COLUMNS, SafeCsvWriter, check_cells
from classifier.galaxy10 import CLASS_NAMES
from classifier.models import Job, JobMember, Prediction

# After the columns of `manage.py classify` (exports.RESULT_COLUMNS), the member's status and
# reason; catalogue columns follow.
STATUS_COLUMNS = ("status", "error")


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
            "catalogue": {column: member.catalogue.get(column, "") for column in job.catalogue_columns},
        }
        if prediction is not None:
            record.update(
                prediction=prediction.class_name,
                class_index=prediction.class_index,
                confidence=round(prediction.confidence, 6),
                probabilities={
                    name: round(p, 6) for name, p in zip(CLASS_NAMES, prediction.probabilities, strict=True)
                },
                in_distribution=prediction.in_distribution,
                ood_score=prediction.ood_score,
                single_band=prediction.single_band,
                prediction_id=prediction.pk,
            )
        yield record


class _Echo:
    def write(self, value: str) -> str:
        return value


def job_results_csv(job: Job) -> Iterator[str]:
    """The results as CSV lines, streamed: classify's columns, status and error, catalogue columns.

    The catalogue's column names came with the submission: the header is escaped as the cells are.
    """
    writer = SafeCsvWriter(_Echo(), lineterminator="\n")
    yield writer.writerow([*RESULT_COLUMNS, *STATUS_COLUMNS, *job.catalogue_columns])
    for record in job_results(job):
        probabilities = record["probabilities"]
        yield writer.writerow(
            [
                record["path"],
                record["prediction"] or "",
                "" if record["class_index"] is None else record["class_index"],
                "" if record["confidence"] is None else f"{record['confidence']:.6f}",
                *(f"{probabilities[name]:.6f}" if probabilities else "" for name in CLASS_NAMES),
                *check_cells(record["in_distribution"], record["ood_score"], record["single_band"]),
                record["status"],
                record["error"],
                *(str(record["catalogue"][c]) for c in job.catalogue_columns),
            ]
        )
