"""The one TFLite service module: the classifier this process serves, built from settings.

Views, the API, commands and Celery tasks get the model through get_classifier(). It is
loaded lazily, once per process, on first use: never at import, in wsgi.py or in
AppConfig.ready, so the app starts and reports the reason even when the model is broken, and
an interpreter is never built before a worker forks (gunicorn's post_fork and Celery's
worker_process_init call get_classifier() in the child). A change to a model setting
(override_settings in tests) drops the loaded classifier; the decode limits are read from
settings on every image.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from classifier.core.decode import ACCEPTED_FORMATS, DecodeLimits, PreparedImage
from classifier.core.decode import fits_preview_png as _fits_preview_png
from classifier.core.exceptions import ModelUnavailableError
from classifier.core.inference import ClassificationResult, GalaxyClassifier
from classifier.ops import metrics

# What the services, pages and commands use with the classifier, from this one module.
__all__ = [
    "ACCEPTED_FORMATS",
    "ClassificationResult",
    "GalaxyClassifier",
    "PreparedImage",
    "decode_limits",
    "fits_preview_png",
    "get_classifier",
    "model_status",
    "reset_classifier",
]

_classifier: GalaxyClassifier | None = None
_classifier_lock = threading.Lock()
_MODEL_SETTINGS = {"MODEL_PATH", "MODEL_MANIFEST", "TFLITE_BACKEND", "TFLITE_NUM_THREADS"}


def decode_limits() -> DecodeLimits:
    return DecodeLimits(
        max_pixels=settings.MAX_IMAGE_PIXELS,
        max_decode_bytes=settings.MAX_DECODE_BYTES,
        memory_budget=settings.DECODE_MEMORY_BUDGET,
    )


def get_classifier() -> GalaxyClassifier:
    """The process-wide classifier, built on first use; raises ModelUnavailableError.

    A failure is not cached, so a model that is fixed on disk is picked up
    without a restart.
    """
    global _classifier  # noqa: PLW0603
    classifier = _classifier
    if classifier is not None:
        return classifier
    with _classifier_lock:
        if _classifier is None:
            _classifier = GalaxyClassifier.from_files(
                model_path=Path(settings.MODEL_PATH),
                manifest_path=Path(settings.MODEL_MANIFEST),
                backend=settings.TFLITE_BACKEND,
                num_threads=settings.TFLITE_NUM_THREADS,
                limits=decode_limits,
                record_inference=metrics.record_inference,
            )
            metrics.record_model_loaded(
                model_version=_classifier.model_version,
                model_sha256=_classifier.model_sha256,
                backend=_classifier.backend_name,
            )
        return _classifier


def reset_classifier() -> None:
    global _classifier  # noqa: PLW0603
    with _classifier_lock:
        _classifier = None


def model_status() -> tuple[bool, str]:
    """For the readiness probe: whether the model can serve, and why not."""
    try:
        classifier = get_classifier()
    except ModelUnavailableError as exc:
        return False, exc.reason
    return True, f"model {classifier.model_version} served with {classifier.backend_name}"


def fits_preview_png(data: bytes) -> bytes:
    """A stored FITS upload coloured as PNG for pages, under the current decode limits;
    raises ImageDecodeError."""
    return _fits_preview_png(data, decode_limits())


@receiver(setting_changed)
def _reset_on_model_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting in _MODEL_SETTINGS:
        reset_classifier()
