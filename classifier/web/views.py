"""Server-rendered pages: upload, results, history, detail, classes and the model card.

The pages are thin: writes go through classifier.predictions.services and reads through
classifier.predictions.selectors, exactly as the REST API does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from classifier.api.serializers import PredictionOutputSerializer
from classifier.core.exceptions import (
    FileRefusal,
    ImageValidationError,
    ModelUnavailableError,
    StorageUnavailableError,
)
from classifier.core.galaxy10 import GALAXY10_CLASSES, GROUPS, NUM_CLASSES
from classifier.models import Prediction
from classifier.ops import throttles
from classifier.ops.client_ip import request_client_ip
from classifier.ops.responses import page_error_json, service_unavailable, wants_json
from classifier.predictions.exports import predictions_csv_response
from classifier.predictions.filters import PredictionFilter
from classifier.predictions.inference import get_classifier
from classifier.predictions.ownership import (
    may_look_up,
    prediction_visible_to,
    predictions_visible,
    remember_own_predictions,
    visible_prediction,
)
from classifier.predictions.selectors import (
    parse_id,
    prediction_filterset,
    prediction_preview_png,
)
from classifier.predictions.services import prediction_create_batch, prediction_delete
from classifier.predictions.upload_messages import translate_refusal
from classifier.web.class_examples import class_examples
from classifier.web.forms import PredictionUploadForm
from classifier.web.model_page import model_page_context
from classifier.web.prediction_cards import prediction_context

HISTORY_PAGE_SIZE = 24
MAX_RESULT_IDS = 200


class PredictionUploadView(View):
    """Classify one or many images. Works as a plain multipart form without JavaScript."""

    template_name = "classifier/upload.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated and not settings.ALLOW_ANONYMOUS_PREDICT:
            return redirect_to_login(request.get_full_path())
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, PredictionUploadForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        if refused := throttles.upload_throttled(
            request, lambda error: self._error_page(request, error, 429)
        ):
            return refused
        form = PredictionUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self._refuse(request, form, refusals=[], status=400)
        try:
            predictions = prediction_create_batch(
                uploads=form.cleaned_data["images"],
                source=Prediction.Source.WEB,
                user=request.user,
                client_ip=request_client_ip(request),
            )
        except ImageValidationError as exc:
            return self._refuse(request, form, refusals=exc.refusals, status=exc.status)
        except (ModelUnavailableError, StorageUnavailableError) as exc:
            return service_unavailable(request, reason=exc.reason, after_upload=True)

        remember_own_predictions(session=request.session, user=request.user, predictions=predictions)
        if len(predictions) == 1:
            target = predictions[0].get_absolute_url()
        else:
            ids = ",".join(str(p.pk) for p in predictions)
            target = f"{reverse('classifier:results')}?{urlencode({'ids': ids})}"
        if wants_json(request):
            return JsonResponse({"redirect": target, "ids": [p.pk for p in predictions]})
        return redirect(target)

    def _error_page(self, request: HttpRequest, error: str, status: int) -> HttpResponse:
        return self._render(request, PredictionUploadForm(), request_errors=[error], status=status)

    def _refuse(
        self, request: HttpRequest, form: PredictionUploadForm, *, refusals: list[FileRefusal], status: int
    ) -> HttpResponse:
        # Refusals of the request as a whole come without a filename.
        request_errors = [translate_refusal(r) for r in refusals if not r.filename]
        request_errors += [str(message) for message in form.errors.get("images", [])]
        per_file = [{"filename": r.filename, "error": translate_refusal(r)} for r in refusals if r.filename]
        if wants_json(request):
            return page_error_json(status, errors=per_file, request_errors=request_errors)
        return self._render(
            request,
            PredictionUploadForm(),
            file_errors=per_file,
            request_errors=request_errors,
            status=status,
        )

    def _render(
        self,
        request: HttpRequest,
        form: PredictionUploadForm,
        *,
        file_errors: list | None = None,
        request_errors: list[str] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        context = {
            "form": form,
            "file_errors": file_errors or [],
            "request_errors": request_errors or [],
            "max_files": settings.MAX_FILES_PER_REQUEST,
            "max_upload_bytes": settings.MAX_UPLOAD_BYTES,
        }
        return render(request, self.template_name, context, status=status)


def requested_result_ids(raw: str) -> list[int]:
    ids: list[int] = []
    for part in raw.split(",")[:MAX_RESULT_IDS]:
        pk = parse_id(part.strip())
        if pk is not None and pk not in ids:
            ids.append(pk)
    return ids


class _ResultsView(View):
    """The predictions named by ?ids=1,2,3 that the reader may see: anonymous uploaders their
    own, logged-in users any. A visitor who may see none of them is asked to log in."""

    def get(self, request: HttpRequest) -> HttpResponse:
        requested = requested_result_ids(request.GET.get("ids", ""))
        visible = predictions_visible(ids=requested, user=request.user, session=request.session)
        if not visible and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return self.respond(request, requested=requested, visible=visible)

    def respond(
        self, request: HttpRequest, *, requested: list[int], visible: list[Prediction]
    ) -> HttpResponse:
        raise NotImplementedError


class PredictionResultsView(_ResultsView):
    """The grid of results of a batch upload: /results/?ids=1,2,3."""

    template_name = "classifier/results.html"

    def respond(
        self, request: HttpRequest, *, requested: list[int], visible: list[Prediction]
    ) -> HttpResponse:
        cards = [prediction_context(prediction) for prediction in visible]
        ids = urlencode({"ids": ",".join(str(prediction.pk) for prediction in visible)})
        return render(
            request,
            self.template_name,
            {
                "cards": cards,
                "missing": len(requested) - len(visible),
                "csv_url": f"{reverse('classifier:results-csv')}?{ids}",
                "json_url": f"{reverse('classifier:results-json')}?{ids}",
            },
        )


class PredictionResultsDownloadView(_ResultsView):
    """The results of /results/?ids=... as CSV or JSON."""

    export_format = "csv"

    def get(self, request: HttpRequest) -> HttpResponse:
        if refused := throttles.throttled(request, throttles.DOWNLOADS):
            return refused
        return super().get(request)

    def respond(
        self, request: HttpRequest, *, requested: list[int], visible: list[Prediction]
    ) -> HttpResponse:
        if self.export_format == "csv":
            response, _count = predictions_csv_response(visible, "galaxy-results.csv")
            return response
        records = PredictionOutputSerializer(visible, many=True, context={"request": request}).data
        response = JsonResponse(records, safe=False)
        response["Content-Disposition"] = 'attachment; filename="galaxy-results.json"'
        return response


class PredictionPreviewView(View):
    """A FITS upload drawn as PNG (browsers cannot show FITS), by the same rule as /media/:
    a 404 for anyone who may not see the prediction, so its existence is not revealed."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        # Counted with /media/: the history page asks for both.
        if refused := throttles.throttled(request, throttles.MEDIA):
            return refused
        prediction = visible_prediction(pk=pk, user=request.user, session=request.session)
        png = prediction_preview_png(prediction) if prediction is not None else None
        if png is None:
            raise Http404
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class PredictionDetailView(View):
    template_name = "classifier/prediction_detail.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        # Anonymous visitors get the login redirect for any id they did not upload, whether
        # it exists or not, so that ids cannot be probed.
        if not may_look_up(pk=pk, user=request.user, session=request.session):
            return redirect_to_login(request.get_full_path())
        prediction = get_object_or_404(Prediction.objects.select_related("user"), pk=pk)
        if not prediction_visible_to(prediction=prediction, user=request.user, session=request.session):
            # Another user's job prediction reads as one that does not exist.
            if request.user.is_authenticated:
                raise Http404
            return redirect_to_login(request.get_full_path())
        context = prediction_context(prediction)
        if request.user.is_staff:
            context["admin_change_url"] = reverse("admin:classifier_prediction_change", args=[prediction.pk])
            context["delete_url"] = reverse("classifier:prediction-delete", args=[prediction.pk])
        return render(request, self.template_name, context)


class HistoryView(LoginRequiredMixin, View):
    """The audit log, filtered, searched, sorted and paginated, with all state in the URL."""

    template_name = "classifier/history.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        filterset = prediction_filterset(filters=request.GET, user=request.user)
        filters_valid = not filterset.is_bound or filterset.is_valid()
        queryset = filterset.qs if filters_valid else Prediction.objects.none()
        page = Paginator(queryset, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
        csv_query = request.GET.copy()
        csv_query.pop("page", None)
        context = {
            "filter_form": filterset.form,
            "filters_valid": filters_valid,
            "page_obj": page,
            "predictions": page.object_list,
            "ordering": request.GET.get("ordering", ""),
            "csv_url": f"{reverse('classifier:history-csv')}?{csv_query.urlencode()}"
            if csv_query
            else reverse("classifier:history-csv"),
            "is_filtered": any(request.GET.get(name) for name in PredictionFilter.Meta.fields),
            "unsure_threshold": settings.UNSURE_CONFIDENCE_THRESHOLD,
            # A mistyped filter is a 400 that names what the page takes, never every row.
            "unknown_parameters": filterset.unknown_parameters(),
            "allowed_parameters": filterset.allowed_parameters(),
        }
        status = 200 if filters_valid else 400
        return render(request, self.template_name, context, status=status)


class HistoryCsvView(LoginRequiredMixin, View):
    """The history as CSV, with the same filters as the page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if refused := throttles.throttled(request, throttles.DOWNLOADS):
            return refused
        filterset = prediction_filterset(filters=request.GET, user=request.user)
        if filterset.is_bound and not filterset.is_valid():
            return HttpResponse(filterset.errors.as_json(), status=400, content_type="application/json")
        response, _count = predictions_csv_response(filterset.qs, "galaxy-predictions.csv")
        return response


class ClassesView(TemplateView):
    template_name = "classifier/classes.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        examples = class_examples()
        context["groups"] = [
            {
                "name": group,
                "classes": [(c, examples.get(c.index)) for c in GALAXY10_CLASSES if c.group == group],
            }
            for group in GROUPS
        ]
        context["num_classes"] = NUM_CLASSES
        context["has_examples"] = bool(examples)
        return context


class ModelView(View):
    """The served model: its card, metrics, confusion matrix and training data summary."""

    template_name = "classifier/model.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            classifier = get_classifier()
        except ModelUnavailableError as exc:
            return service_unavailable(request, reason=exc.reason)
        context = model_page_context(manifest=classifier.manifest, model_dir=Path(settings.MODEL_PATH).parent)
        context.update(
            {
                "model_version": classifier.model_version,
                "model_sha256": classifier.model_sha256,
                "backend_name": classifier.backend_name,
                "classes": GALAXY10_CLASSES,
                "unsure_threshold": settings.UNSURE_CONFIDENCE_THRESHOLD,
            }
        )
        return render(request, self.template_name, context)


class PredictionDeleteView(View):
    """Staff confirm and delete one prediction on the site itself, rather than in the admin."""

    template_name = "classifier/prediction_delete.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        # Who may delete is the API's rule (DELETE /api/predictions/<id>/): staff.
        if not request.user.is_staff:
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        prediction = get_object_or_404(Prediction, pk=pk)
        return render(request, self.template_name, prediction_context(prediction))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        prediction = get_object_or_404(Prediction, pk=pk)
        prediction_delete(prediction=prediction)
        messages.success(
            request,
            _("Prediction #%(id)s (%(filename)s) was deleted.")
            % {
                "id": pk,
                "filename": prediction.original_filename,
            },
        )
        return redirect("classifier:history")
