"""Reads of the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from classifier import fits
from classifier.filters import PredictionFilter
from classifier.models import Prediction

# The pages remember which predictions an anonymous visitor uploaded in this
# session key, so that they can see their own results (and images) without login.
OWN_PREDICTIONS_SESSION_KEY = "classifier_own_predictions"
# The largest id a BigAutoField holds; a larger one cannot exist, so it is not looked up.
MAX_ID = 2**63 - 1


def _check_reader(user: Any) -> None:
    # Internal callers (commands, services) pass no user; a request must pass its user.
    if user is not None and not getattr(user, "is_authenticated", False):
        raise PermissionDenied("log in to read the prediction log")


def prediction_filterset(*, filters: Mapping[str, Any] | None = None, user: Any = None) -> PredictionFilter:
    """The bound filter set, for pages that render its form as well as its results."""
    _check_reader(user)
    queryset = Prediction.objects.select_related("user")
    return PredictionFilter(data=filters or None, queryset=queryset)


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
    """One prediction; raises Prediction.DoesNotExist."""
    _check_reader(user)
    if not -MAX_ID <= int(pk) <= MAX_ID:
        raise Prediction.DoesNotExist  # the database could not even compare it
    return Prediction.objects.select_related("user").get(pk=pk)


def parse_id(text: str) -> int | None:
    """A prediction id written in ASCII digits, or None (never an exception)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def anonymous_owned_ids(session: Mapping[str, Any] | None) -> list[int]:
    """The ids this anonymous session uploaded (it may still hold some that were deleted or
    have aged out: prediction_visible_to checks those)."""
    return list((session or {}).get(OWN_PREDICTIONS_SESSION_KEY, []))


def anonymous_ownership_cutoff() -> datetime:
    """Uploads older than this are no longer readable through the session that made them."""
    return timezone.now() - timedelta(seconds=settings.ANONYMOUS_OWNERSHIP_SECONDS)


def anonymous_owned(session: Mapping[str, Any] | None) -> QuerySet[Prediction]:
    return Prediction.objects.filter(
        pk__in=anonymous_owned_ids(session), created_at__gte=anonymous_ownership_cutoff()
    )


def prediction_visible_to(*, prediction: Prediction, user: Any, session: Mapping[str, Any] | None) -> bool:
    """Logged-in users read the whole log; anonymous visitors only what they uploaded, for
    ANONYMOUS_OWNERSHIP_SECONDS."""
    if getattr(user, "is_authenticated", False):
        return True
    return (
        prediction.pk in anonymous_owned_ids(session)
        and prediction.created_at >= anonymous_ownership_cutoff()
    )


def predictions_visible(*, ids: list[int], user: Any, session: Mapping[str, Any] | None) -> list[Prediction]:
    """The predictions among ``ids`` that this reader may see, in the order asked for."""
    found = Prediction.objects.in_bulk(ids)
    return [
        found[pk]
        for pk in ids
        if pk in found and prediction_visible_to(prediction=found[pk], user=user, session=session)
    ]


def prediction_is_grey_fits(prediction: Prediction) -> bool:
    """Whether the stored upload is a single-band FITS image, classified in grey (docs/fits.md).

    Reads only the headers; a file that cannot be read counts as not grey.
    """
    if not prediction.is_fits:
        return False
    try:
        with prediction.image.open("rb") as stored:
            layout = fits.inspect(stored.read(), max_pixels=settings.MAX_IMAGE_PIXELS)
    except (OSError, ValueError):
        return False
    return layout.band_count == 1


def prediction_preview_png(prediction: Prediction) -> bytes | None:
    """The stored FITS upload coloured and encoded as PNG for pages; None when the prediction is
    not a FITS upload or its file cannot be read."""
    if not prediction.is_fits:
        return None
    try:
        with prediction.image.open("rb") as stored:
            return fits.preview_png(stored.read(), max_pixels=settings.MAX_IMAGE_PIXELS)
    except (OSError, ValueError):
        return None
