"""Anonymous ownership: which predictions a visitor who is not logged in may see.

Logged-in users read the whole audit log. An anonymous visitor sees only what they uploaded
in their own session, for ANONYMOUS_OWNERSHIP_SECONDS (SECURITY.md, "Anonymous uploads"): the
pages, the result downloads, the FITS previews and the stored images (/media/) all ask here,
so the rule has one home.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import QuerySet
from django.utils import timezone

from classifier.models import Prediction

# The session key under which the pages remember an anonymous visitor's uploads.
OWN_PREDICTIONS_SESSION_KEY = "classifier_own_predictions"
# An anonymous session remembers at most this many of its own uploads; older
# ones fall out first, which keeps the session cookie/row small.
MAX_REMEMBERED_PREDICTIONS = 500


def _is_logged_in(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def remember_own_predictions(*, session: SessionBase, user: Any, predictions: Iterable[Prediction]) -> None:
    """Record an anonymous visitor's new uploads in their session, so they may read them."""
    if _is_logged_in(user):
        return  # a logged-in user reads the whole log anyway
    remembered = list(session.get(OWN_PREDICTIONS_SESSION_KEY, []))
    remembered.extend(p.pk for p in predictions)
    session[OWN_PREDICTIONS_SESSION_KEY] = remembered[-MAX_REMEMBERED_PREDICTIONS:]
    # A new session key whenever the session gains uploads: a session id planted in the
    # visitor's browser beforehand no longer reaches them (SECURITY.md, "Anonymous uploads").
    session.cycle_key()


def anonymous_owned_ids(session: Mapping[str, Any] | None) -> list[int]:
    """The ids this anonymous session uploaded (it may still hold some that were deleted or
    have aged out: prediction_visible_to checks those)."""
    return list((session or {}).get(OWN_PREDICTIONS_SESSION_KEY, []))


def may_look_up(*, pk: int, user: Any, session: Mapping[str, Any] | None) -> bool:
    """Whether looking ``pk`` up can show anything to this reader. An anonymous visitor gets
    the same answer for any id they did not upload, whether it exists or not, so ids cannot
    be probed."""
    return _is_logged_in(user) or pk in anonymous_owned_ids(session)


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
    if _is_logged_in(user):
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


def stored_image_visible_to(*, name: str, user: Any, session: Mapping[str, Any] | None) -> bool:
    """Whether the stored image ``name`` (relative to MEDIA_ROOT) belongs to a prediction this
    reader may see."""
    return _is_logged_in(user) or anonymous_owned(session).filter(image=name).exists()
