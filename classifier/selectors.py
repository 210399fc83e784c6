"""Reads of the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet

from classifier.filters import PredictionFilter
from classifier.models import Prediction

# The pages remember which predictions an anonymous visitor uploaded in this
# session key, so that they can see their own results (and images) without login.
OWN_PREDICTIONS_SESSION_KEY = "classifier_own_predictions"


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
        raise ValidationError(filterset.errors.get_json_data())
    return filterset.qs


def prediction_get(*, pk: int, user: Any = None) -> Prediction:
    """One prediction; raises Prediction.DoesNotExist."""
    _check_reader(user)
    return Prediction.objects.select_related("user").get(pk=pk)


def prediction_visible_to(*, prediction: Prediction, user: Any, session: Mapping[str, Any] | None) -> bool:
    """Logged-in users read the whole log; anonymous visitors only what they uploaded."""
    if getattr(user, "is_authenticated", False):
        return True
    own = (session or {}).get(OWN_PREDICTIONS_SESSION_KEY, [])
    return prediction.pk in own
