"""Reads of the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from classifier.models import Prediction
from classifier.predictions import storage
from classifier.predictions.filters import PredictionFilter
from classifier.predictions.inference import fits_preview_png
from classifier.predictions.ownership import logged_in_reader_filter

# The largest id a BigAutoField holds; a larger one cannot exist, so it is not looked up.
MAX_ID = 2**63 - 1


def _check_reader(user: Any) -> None:
    # Internal callers (commands, services) pass no user; a request must pass its user.
    if user is not None and not getattr(user, "is_authenticated", False):
        raise PermissionDenied("log in to read the prediction log")


def _readable(user: Any) -> QuerySet[Prediction]:
    """The predictions ``user`` may read: those of other users' jobs are left out
    (classifier.predictions.ownership); internal callers (user None) read all."""
    _check_reader(user)
    queryset = Prediction.objects.select_related("user")
    return queryset if user is None else queryset.filter(logged_in_reader_filter(user))


def prediction_filterset(*, filters: Mapping[str, Any] | None = None, user: Any = None) -> PredictionFilter:
    """The bound filter set, for pages that render its form as well as its results."""
    return PredictionFilter(data=filters or None, queryset=_readable(user))


def prediction_list(*, filters: Mapping[str, Any] | None = None, user: Any = None) -> QuerySet[Prediction]:
    """Predictions matching ``filters`` (newest first unless ordered otherwise).

    ``user`` is the reader: anonymous readers are refused with PermissionDenied.
    Invalid filter values raise ValidationError with the per-field errors.
    """
    filterset = prediction_filterset(filters=filters, user=user)
    if filterset.is_bound and not filterset.is_valid():
        # The errors themselves (not their JSON form, which pairs each message with its code),
        # so that callers report {"field": ["message", ...]} as DRF and django-filter do.
        raise ValidationError(filterset.errors.as_data())
    return filterset.qs


def prediction_get(*, pk: int | str, user: Any = None) -> Prediction:
    """One prediction the reader may see; raises Prediction.DoesNotExist otherwise (no hint
    that it exists)."""
    readable = _readable(user)
    if not -MAX_ID <= int(pk) <= MAX_ID:
        raise Prediction.DoesNotExist  # the database could not even compare it
    return readable.get(pk=pk)


def parse_id(text: str) -> int | None:
    """A prediction id written in ASCII digits, or None (never an exception)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def prediction_preview_png(prediction: Prediction) -> bytes | None:
    """The stored FITS upload coloured and encoded as PNG for pages; None when the prediction is
    not a FITS upload or its file cannot be read.

    Rendered once, on the first request, and stored beside the FITS file (storage.preview_name),
    so that later requests cost a file read, not a decode (docs/fits.md).
    """
    if not prediction.is_fits:
        return None
    image_name = prediction.image.name
    try:
        with default_storage.open(storage.preview_name(image_name), "rb") as stored:
            return stored.read()
    except OSError:
        pass  # not rendered yet
    try:
        with prediction.image.open("rb") as stored:
            png = fits_preview_png(stored.read(settings.MAX_UPLOAD_BYTES + 1))
    except (OSError, ValueError):  # ImageDecodeError is a ValueError
        return None
    storage.store_preview(image_name, png)
    return png
