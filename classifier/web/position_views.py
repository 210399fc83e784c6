"""The upload page's "By position" tab: one sky position is classified at once (its survey
cutout fetched, docs/positions.md); several become a job. Thin: the services decide."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import View

from classifier.core.exceptions import (
    CutoutUnavailableError,
    ModelUnavailableError,
    NoImagingError,
    StorageUnavailableError,
)
from classifier.core.positions import Position
from classifier.jobs.submissions import submission_from_positions
from classifier.jobs.views import job_submit_response
from classifier.models import Prediction
from classifier.ops import throttles
from classifier.ops.client_ip import request_client_ip
from classifier.ops.responses import service_unavailable
from classifier.predictions.ownership import remember_own_predictions
from classifier.predictions.services import prediction_create_from_position
from classifier.web.forms import PositionForm


class PositionClassifyView(View):
    template_name = "classifier/upload_position.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated and not settings.ALLOW_ANONYMOUS_PREDICT:
            return redirect_to_login(request.get_full_path())
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, PositionForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        refused = throttles.upload_throttled(
            request, lambda error: self._render(request, PositionForm(request.POST), error=error, status=429)
        )
        if refused:
            return refused
        form = PositionForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        entries = form.cleaned_data["positions"]
        if len(entries) == 1:
            return self._classify_one(request, form, entries[0][1])
        return self._submit_job(request, form, entries)

    def _classify_one(self, request: HttpRequest, form: PositionForm, position: Position) -> HttpResponse:
        try:
            prediction = prediction_create_from_position(
                ra=position.ra,
                dec=position.dec,
                source=Prediction.Source.WEB,
                user=request.user,
                client_ip=request_client_ip(request),
            )
        except NoImagingError as exc:
            error = _("The survey has no imaging at this position: %(reason)s") % {"reason": exc.reason}
            return self._render(request, form, error=error, status=exc.status)
        except CutoutUnavailableError as exc:
            error = _("The survey's cutout service failed, nothing was saved: %(reason)s") % {
                "reason": exc.reason
            }
            return self._render(request, form, error=error, status=exc.status)
        except (ModelUnavailableError, StorageUnavailableError) as exc:
            return service_unavailable(request, reason=exc.reason, after_upload=True)
        remember_own_predictions(session=request.session, user=request.user, predictions=[prediction])
        return redirect(prediction)

    def _submit_job(self, request: HttpRequest, form: PositionForm, entries: list) -> HttpResponse:
        if not request.user.is_authenticated:
            error = _("Log in to classify a list of positions: it becomes a classification job.")
            return self._render(request, form, error=error, status=403)
        return job_submit_response(
            request,
            lambda: submission_from_positions(
                entries, name=_("%(count)s positions") % {"count": len(entries)}
            ),
            refuse=lambda error, status: self._render(request, form, error=error, status=status),
        )

    def _render(
        self, request: HttpRequest, form: PositionForm, *, error: str = "", status: int = 200
    ) -> HttpResponse:
        context = {"form": form, "error": error, "tab": "position", "cutout_url": settings.CUTOUT_URL}
        return render(request, self.template_name, context, status=status)
