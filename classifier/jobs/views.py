"""Pages of classification jobs: submit (/jobs/new/), follow (/jobs/<id>/), cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View

from classifier.core.exceptions import JobInputError, StorageUnavailableError
from classifier.jobs import selectors as job_selectors
from classifier.jobs import services as job_services
from classifier.jobs.submissions import Submission, submission_from_uploads
from classifier.models import Job, Prediction
from classifier.predictions.upload_fields import MultipleFileInput, MultipleImageField

GALLERY_PAGE_SIZE = 48


class JobCreateForm(forms.Form):
    archive = forms.FileField(
        label=_("A .zip of images"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    images = MultipleImageField(
        label=_("Or image files"),
        required=False,
        widget=MultipleFileInput(attrs={"accept": "image/*,.fits,.fit,.fts"}),
    )
    catalogue = forms.FileField(
        label=_("Catalogue CSV (optional)"),
        required=False,
        help_text=_("A 'file' column and any of 'id', 'ra', 'dec': they are carried into every result row."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


def job_submit_response(
    request: HttpRequest,
    build_submission: Callable[[], Submission],
    *,
    refuse: Callable[[str, int], HttpResponse],
) -> HttpResponse:
    """Creates the job a page's form describes and redirects to it; input that cannot make a
    job answers 413 or 400, a broker or storage that is down 503, through the page's `refuse`.
    Shared by the job form and the upload page's list of positions."""
    try:
        submission = build_submission()
        job = job_services.job_create(
            name=submission.name,
            members=submission.members,
            catalogue=submission.catalogue,
            user=request.user,
        )
    except JobInputError as exc:
        return refuse(exc.reason, 413 if exc.too_large else 400)
    except (job_services.JobQueueUnavailableError, StorageUnavailableError) as exc:
        return refuse(exc.reason, 503)
    return redirect(job)


class JobCreateView(LoginRequiredMixin, View):
    template_name = "classifier/job_new.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, JobCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = JobCreateForm(request.POST, request.FILES)
        if not form.is_valid():
            return self._render(request, form, status=400)
        return job_submit_response(
            request,
            lambda: submission_from_uploads(
                archive=form.cleaned_data["archive"],
                images=form.cleaned_data["images"],
                catalogue=form.cleaned_data["catalogue"],
            ),
            refuse=lambda error, status: self._render(request, form, error=error, status=status),
        )

    def _render(
        self, request: HttpRequest, form: JobCreateForm, *, error: str = "", status: int = 200
    ) -> HttpResponse:
        context = {
            "form": form,
            "error": error,
            "jobs": job_selectors.job_list(user=request.user)[:20],
            "max_archive_bytes": settings.JOB_MAX_ARCHIVE_BYTES,
            "max_files": settings.MAX_FILES_PER_REQUEST,
        }
        return render(request, self.template_name, context, status=status)


def _job_or_404(request: HttpRequest, pk: int) -> Job:
    try:
        return job_selectors.job_get(pk=pk, user=request.user)
    except Job.DoesNotExist as exc:
        raise Http404("no such job") from exc


class JobDetailView(LoginRequiredMixin, View):
    template_name = "classifier/job_detail.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = _job_or_404(request, pk)
        context: dict[str, Any] = {
            "job": job,
            "rate": job_selectors.job_rate(job),
            "status_url": reverse("api:job-detail", args=[job.pk]),
            "class_counts": [] if job.is_active else job_selectors.job_class_counts(job),
        }
        return render(request, self.template_name, context)


class JobGalleryView(LoginRequiredMixin, View):
    """The job's galaxies as a gallery: filtered by class and confidence, sorted, paginated,
    with every state in the URL. Filters that are not valid, or unknown, answer 400."""

    template_name = "classifier/job_gallery.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = _job_or_404(request, pk)
        filterset = job_selectors.job_gallery_filterset(job=job, filters=request.GET)
        valid = not filterset.is_bound or filterset.is_valid()
        queryset = filterset.qs if valid else Prediction.objects.none()
        page = Paginator(queryset, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
        id_column = job_selectors.job_catalogue_id_column(job)
        items = []
        for prediction in page.object_list:
            member = prediction.job_member
            items.append(
                {
                    "prediction": prediction,
                    "name": member.path if member else prediction.original_filename,
                    "catalogue_id": member.catalogue.get(id_column, "") if member and id_column else "",
                    "unsure": prediction.confidence < settings.UNSURE_CONFIDENCE_THRESHOLD,
                }
            )
        context: dict[str, Any] = {
            "job": job,
            "filter_form": filterset.form,
            "filters_valid": valid,
            "unknown_parameters": filterset.unknown_parameters(),
            "allowed_parameters": filterset.allowed_parameters(),
            "is_filtered": any(
                request.GET.get(name) for name in ("class_index", "confidence_min", "confidence_max")
            ),
            "page_obj": page,
            "items": items,
            "id_column": id_column,
        }
        return render(request, self.template_name, context, status=200 if valid else 400)


class JobCancelView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        job_services.job_cancel(job=_job_or_404(request, pk))
        return redirect(reverse("classifier:job-detail", args=[pk]))
