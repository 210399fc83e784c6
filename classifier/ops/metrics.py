"""What an operator watches: the app's Prometheus metrics and the /metrics endpoint.

The metrics are prometheus_client objects, so they work in one process and, when
PROMETHEUS_MULTIPROC_DIR is set (galaxysite/gunicorn.py sets it for every worker), summed
over all of gunicorn's workers at scrape time. HTTP and database metrics come from
django-prometheus's middleware and database backends; the ones below are the app's own.

This module is a leaf: inference and services call into it, and it imports neither.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import Counter, Gauge, Histogram

logger = logging.getLogger(__name__)

# --- metrics ------------------------------------------------------------------------------------

PREDICTIONS = Counter(
    "galaxy_predictions_total",
    "Predictions recorded in the audit log, by predicted class and source (web, api, cli).",
    ["class_name", "source"],
)
OUT_OF_DISTRIBUTION = Counter(
    "galaxy_predictions_out_of_distribution_total",
    "Predictions whose image did not look like a galaxy cutout (docs/ood.md), by source.",
    ["source"],
)
INFERENCE_SECONDS = Histogram(
    "galaxy_model_inference_seconds",
    "Time of one model call (set_tensor, invoke, get_tensor), per image.",
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0),
)
UPLOAD_REFUSALS = Counter(
    "galaxy_upload_refusals_total",
    "Uploaded files (or whole requests) refused before classification, by reason.",
    ["reason"],
)
# An info metric as a gauge: prometheus_client's Info does not work across processes.
# livemax: a worker that exits stops reporting its model.
MODEL_INFO = Gauge(
    "galaxy_model_info",
    "The model a worker serves (1 per version loaded in a live worker).",
    ["model_version", "model_sha256", "backend"],
    multiprocess_mode="livemax",
)

REQUEST_TOO_LARGE = "request_too_large"


def record_refusals(codes: Iterable[str]) -> None:
    """One count per refusal, labelled with its code (classifier.core.exceptions.FileRefusal)."""
    for code in codes:
        UPLOAD_REFUSALS.labels(reason=code).inc()


def record_request_too_large() -> None:
    UPLOAD_REFUSALS.labels(reason=REQUEST_TOO_LARGE).inc()


def record_predictions(predictions: Iterable[Any]) -> None:
    for prediction in predictions:
        PREDICTIONS.labels(class_name=prediction.class_name, source=prediction.source).inc()
        if prediction.in_distribution is False:
            OUT_OF_DISTRIBUTION.labels(source=prediction.source).inc()


def record_inference(seconds_per_image: float, images: int) -> None:
    for _ in range(images):
        INFERENCE_SECONDS.observe(seconds_per_image)


def record_model_loaded(*, model_version: str, model_sha256: str, backend: str) -> None:
    MODEL_INFO.labels(model_version=model_version, model_sha256=model_sha256, backend=backend).set(1)


# --- the /metrics endpoint -----------------------------------------------------------------------


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def metrics_access_allowed(request: HttpRequest) -> bool:
    """A bearer token equal to METRICS_TOKEN, or a loopback caller that is not a proxy.

    Behind a proxy every request arrives from the proxy's address, often loopback, so
    there the address proves nothing and only the token opens the endpoint.
    """
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    if settings.BEHIND_PROXY:
        return False
    return settings.METRICS_ALLOW_LOOPBACK and _is_loopback(request.META.get("REMOTE_ADDR", ""))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format; 404 to anyone else, so the endpoint does not advertise itself."""
    if not metrics_access_allowed(request):
        raise Http404
    from django_prometheus.exports import ExportToDjangoView

    return ExportToDjangoView(request)
