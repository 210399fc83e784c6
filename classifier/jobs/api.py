"""The jobs API: submit a catalogue, follow it, download its results, cancel or delete it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.api.serializers import ErrorOutputSerializer, GalaxyZooField
from classifier.core.exceptions import JobInputError
from classifier.core.galaxy10 import CLASS_NAMES
from classifier.jobs import selectors as job_selectors
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Job, JobMember
from classifier.predictions.votable import VOTABLE_CONTENT_TYPE

ARCHIVE_FIELD = "archive"
IMAGE_FIELD = "image"
CATALOGUE_FIELD = "catalogue"


class JobCreateInputSerializer(serializers.Serializer):
    archive = serializers.FileField(required=False, help_text="A .zip of images (subfolders kept).")
    image = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="Or image files, each in an `image` field."
    )
    catalogue = serializers.FileField(
        required=False,
        help_text="Optional catalogue CSV with a `file` column and any others (`id`, `ra`, `dec`, ...); "
        "or, alone, a catalogue of positions: `ra` and `dec` columns in degrees, one cutout fetched "
        "and classified per row (docs/positions.md).",
    )


class JobClassCountSerializer(serializers.Serializer):
    class_index = serializers.IntegerField()
    name = serializers.CharField()
    count = serializers.IntegerField()
    fraction = serializers.FloatField()


class JobOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Job.Status.choices)
    total = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Members classified.")
    failed = serializers.IntegerField(help_text="Members that could not be classified (see the results).")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    model_version = serializers.CharField()
    rate = serializers.SerializerMethodField(help_text="Members finished per second.")
    error = serializers.CharField(help_text="Why the job failed, if it did.")
    catalogue_columns = serializers.ListField(child=serializers.CharField())
    results_csv = serializers.SerializerMethodField()
    results_json = serializers.SerializerMethodField()
    owner = serializers.CharField(source="user.username", default=None, allow_null=True)

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj: Job) -> str:
        return self._absolute(reverse("api:job-detail", args=[obj.pk]))

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, obj: Job) -> str:
        return self._absolute(obj.get_absolute_url())

    @extend_schema_field(OpenApiTypes.URI)
    def get_results_csv(self, obj: Job) -> str:
        return self._absolute(reverse("api:job-results-csv", args=[obj.pk]))

    @extend_schema_field(OpenApiTypes.URI)
    def get_results_json(self, obj: Job) -> str:
        return self._absolute(reverse("api:job-results-json", args=[obj.pk]))

    # Null until the job has finished a member.
    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_rate(self, obj: Job) -> float | None:
        return job_selectors.job_rate(obj)


class JobDetailOutputSerializer(JobOutputSerializer):
    class_counts = serializers.SerializerMethodField()

    @extend_schema_field(JobClassCountSerializer(many=True))
    def get_class_counts(self, obj: Job) -> list[dict[str, Any]]:
        return job_selectors.job_class_counts(obj)


class JobListOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = JobOutputSerializer(many=True)


class JobResultSerializer(serializers.Serializer):
    path = serializers.CharField()
    status = serializers.ChoiceField(choices=JobMember.Status.choices)
    error = serializers.CharField()
    prediction = serializers.CharField(allow_null=True)
    class_index = serializers.IntegerField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    probabilities = serializers.DictField(child=serializers.FloatField(), allow_null=True)
    prediction_id = serializers.IntegerField(allow_null=True)
    cutout_url = serializers.CharField(help_text="Where the member's cutout was fetched; empty for files.")
    catalogue = serializers.DictField(child=serializers.CharField())
    galaxy_zoo = GalaxyZooField()


class JobApi(APIView):
    """Turns a refused submission into 400/413 and a broker outage into 503, as JSON."""

    permission_classes = [IsAuthenticated]


ERRORS = {
    401: ErrorOutputSerializer,
    403: ErrorOutputSerializer,
    404: ErrorOutputSerializer,
}


class JobListCreateApi(JobApi):
    """POST submits a job (JobCreate); GET lists the reader's jobs, or all of them for staff."""

    name = _("Jobs")

    @extend_schema(
        operation_id="jobs_create",
        request={"multipart/form-data": JobCreateInputSerializer},
        responses={
            202: JobOutputSerializer,
            400: ErrorOutputSerializer,
            401: ErrorOutputSerializer,
            403: ErrorOutputSerializer,
            413: ErrorOutputSerializer,
            503: ErrorOutputSerializer,
        },
        description="Submit a catalogue: a .zip in `archive`, or images in `image` fields, and optionally a "
        "catalogue CSV in `catalogue`. Answers 202 at once; follow `url` for progress.",
    )
    def post(self, request: Request) -> Response:
        unexpected = sorted(set(request.FILES) - {ARCHIVE_FIELD, IMAGE_FIELD, CATALOGUE_FIELD})
        if unexpected:
            raise JobInputError(f"unexpected file fields: {', '.join(unexpected)}")
        submission = submission_from_uploads(
            archive=request.FILES.get(ARCHIVE_FIELD),
            images=request.FILES.getlist(IMAGE_FIELD),
            catalogue=request.FILES.get(CATALOGUE_FIELD),
        )
        job = job_services.job_create(
            name=submission.name,
            members=submission.members,
            catalogue=submission.catalogue,
            user=request.user,
        )
        output = JobOutputSerializer(job, context={"request": request})
        return Response(
            output.data, status=status.HTTP_202_ACCEPTED, headers={"Location": output.data["url"]}
        )

    @extend_schema(
        operation_id="jobs_list", responses={200: JobListOutputSerializer, 401: ErrorOutputSerializer}
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(job_selectors.job_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(
            JobOutputSerializer(page, many=True, context={"request": request}).data
        )


class JobDetailApi(JobApi):
    """GET: progress, timestamps, rate and class counts; DELETE (staff): the job and its predictions."""

    name = _("Job")

    def get_permissions(self) -> list[BasePermission]:
        return [IsAdminUser()] if self.request.method == "DELETE" else [IsAuthenticated()]

    @extend_schema(operation_id="jobs_retrieve", responses={200: JobDetailOutputSerializer, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        job = job_selectors.job_get(pk=pk, user=request.user)
        return Response(JobDetailOutputSerializer(job, context={"request": request}).data)

    @extend_schema(operation_id="jobs_destroy", responses={204: None, **ERRORS})
    def delete(self, request: Request, pk: int) -> Response:
        job_services.job_delete(job=job_selectors.job_get(pk=pk, user=request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobCancelApi(JobApi):
    name = _("Cancel job")

    @extend_schema(
        operation_id="jobs_cancel",
        request=None,
        responses={200: JobOutputSerializer, 409: ErrorOutputSerializer, **ERRORS},
        description="Cancel a queued or running job (409 if it has already ended).",
    )
    def post(self, request: Request, pk: int) -> Response:
        job = job_selectors.job_get(pk=pk, user=request.user)
        if not job_services.job_cancel(job=job):
            return Response({"detail": f"the job has already ended ({job.status})"}, status.HTTP_409_CONFLICT)
        return Response(JobOutputSerializer(job, context={"request": request}).data)


class JobResultsCsvApi(JobApi):
    name = _("Job results (CSV)")

    @extend_schema(
        operation_id="jobs_results_csv",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="path, prediction, class_index, confidence, one column per class ("
                + ", ".join(CLASS_NAMES)
                + "), status, error, then the catalogue's columns.",
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        job = job_selectors.job_get(pk=pk, user=request.user)
        response = StreamingHttpResponse(
            job_selectors.job_results_csv(job), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-results.csv"'
        return response


class JobResultsJsonApi(JobApi):
    name = _("Job results (JSON)")

    @extend_schema(
        operation_id="jobs_results_json", responses={200: JobResultSerializer(many=True), **ERRORS}
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        job = job_selectors.job_get(pk=pk, user=request.user)
        response = StreamingHttpResponse(
            _json_array(job_selectors.job_results(job)), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-results.json"'
        return response


class VOTableRenderer(BaseRenderer):
    """Lets a client ask for the VOTable by its media type; the view writes the file itself,
    and its errors are rendered as JSON."""

    media_type = VOTABLE_CONTENT_TYPE
    format = "vot"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        raise NotImplementedError("only errors reach a renderer here, and they are JSON")


# A VOTable is written whole by astropy; past this size it is spooled to a temporary file
# instead of memory.
VOTABLE_SPOOL_BYTES = 8 * 1024 * 1024


class JobResultsVotableApi(JobApi):
    """The job results as a VOTable, for TOPCAT, Aladin and astropy; errors as JSON."""

    name = _("Job results (VOTable)")
    renderer_classes = [JSONRenderer, VOTableRenderer]

    @extend_schema(
        operation_id="jobs_results_votable",
        responses={
            (200, VOTABLE_CONTENT_TYPE): OpenApiResponse(
                OpenApiTypes.STR,
                description="A VOTable 1.4 (TOPCAT, astropy.io.votable) with the CSV's columns, the "
                "probabilities with UCD stat.probability, and catalogue RA/Dec columns in degrees with "
                "UCDs pos.eq.ra;meta.main and pos.eq.dec;meta.main. Failed members have empty answers "
                "and their reason in `error`.",
            ),
            **{(code, "application/json"): serializer for code, serializer in ERRORS.items()},
        },
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        job = job_selectors.job_get(pk=pk, user=request.user)
        spool = tempfile.SpooledTemporaryFile(max_size=VOTABLE_SPOOL_BYTES)  # noqa: SIM115 (the response closes it)
        job_selectors.job_results_votable(job, spool)
        spool.seek(0)
        return FileResponse(
            spool,
            as_attachment=True,
            filename=f"job-{job.pk}-results.vot",
            content_type=VOTABLE_CONTENT_TYPE,
        )


def _json_array(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    # Streamed, so a 300,000-member job never sits in memory as one document.
    yield "["
    for position, record in enumerate(records):
        yield ("," if position else "") + json.dumps(record)
    yield "]\n"
