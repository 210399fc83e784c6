"""Who may see which predictions: the one home of the audit log's access rule.

Logged-in users read the audit log, except the predictions of other users' classification
jobs: a job's predictions are seen by whoever may see the job (its owner, and staff), as
classifier.jobs.selectors.job_list decides. An anonymous visitor sees only what they uploaded
in their own session, for ANONYMOUS_OWNERSHIP_SECONDS (SECURITY.md, "Anonymous uploads"). The
API, the pages, the result downloads, the FITS previews and the stored images (/media/) all
ask here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import Q, QuerySet
from django.utils import timezone

from classifier.models import Job, Prediction

# The session key under which the pages remember an anonymous visitor's uploads.
OWN_PREDICTIONS_SESSION_KEY = "classifier_own_predictions"
# An anonymous session remembers at most this many of its own uploads; older
# ones fall out first, which keeps the session cookie/row small.
MAX_REMEMBERED_PREDICTIONS = 500
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The predictions of no job. One marked as a job's but with no job (it cannot happen: the job's
# deletion cascades) stays hidden rather than falling back to the shared log.
OUTSIDE_JOBS = Q(job__isnull=True) & ~Q(source=Prediction.Source.JOB)


def _is_logged_in(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def remember_own_predictions(*, session: SessionBase, user: Any, predictions: Iterable[Prediction]) -> None:
    """Record an anonymous visitor's new uploads in their session, so they may read them."""
    if _is_logged_in(user):
        return  # a logged-in user's reads go by their account, not their session
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


def _is_staff(user: Any) -> bool:
    return _is_logged_in(user) and bool(getattr(user, "is_staff", False))


def logged_in_reader_filter(user: Any) -> Q:
    """The predictions a logged-in ``user`` may read: every one outside jobs, and those of the
    jobs they may see (their own; staff see every job)."""
    if _is_staff(user):
        return Q()
    return OUTSIDE_JOBS | Q(job__user=user)


def visible_predictions(*, user: Any, session: Mapping[str, Any] | None) -> QuerySet[Prediction]:
    """Every prediction this reader may see."""
    if _is_logged_in(user):
        return Prediction.objects.filter(logged_in_reader_filter(user))
    # Jobs need a login, so an anonymous session never uploaded a job's prediction.
    return anonymous_owned(session).filter(OUTSIDE_JOBS)


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


def _in_a_job(prediction: Prediction) -> bool:
    # OUTSIDE_JOBS, for a row already loaded.
    return prediction.job_id is not None or prediction.source == Prediction.Source.JOB


def prediction_visible_to(*, prediction: Prediction, user: Any, session: Mapping[str, Any] | None) -> bool:
    """Logged-in users read the log outside jobs and the predictions of the jobs they may see;
    anonymous visitors only what they uploaded, for ANONYMOUS_OWNERSHIP_SECONDS."""
    if _is_logged_in(user):
        if not _in_a_job(prediction) or _is_staff(user):
            return True
        return (
            prediction.job_id is not None
            and Job.objects.filter(pk=prediction.job_id, user_id=user.pk).exists()
        )
    return (
        not _in_a_job(prediction)
        and prediction.pk in anonymous_owned_ids(session)
        and prediction.created_at >= anonymous_ownership_cutoff()
    )


def predictions_visible(*, ids: list[int], user: Any, session: Mapping[str, Any] | None) -> list[Prediction]:
    """The predictions among ``ids`` that this reader may see, in the order asked for."""
    found = visible_predictions(user=user, session=session).in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


def visible_prediction(*, pk: int, user: Any, session: Mapping[str, Any] | None) -> Prediction | None:
    """Prediction ``pk`` if this reader may see it; None whether it does not exist or is hidden,
    so a caller's 404 does not reveal which."""
    return visible_predictions(user=user, session=session).filter(pk=pk).first()


def stored_image_visible_to(*, name: str, user: Any, session: Mapping[str, Any] | None) -> bool:
    """Whether the stored file ``name`` (relative to MEDIA_ROOT) is the image of a prediction
    this reader may see. Nothing else under MEDIA_ROOT is served to anyone: a job's staged
    chunks (jobs/<id>/...) are the image of no prediction."""
    candidates = visible_predictions(user=user, session=session)
    stem = PurePosixPath(name).stem
    if _SHA256_HEX.fullmatch(stem):
        # Stored images are named by their row's sha256 (models.prediction_image_path), which
        # is indexed: the image column is not, and would be scanned whole on every GET.
        candidates = candidates.filter(sha256=stem)
    return candidates.filter(image=name).exists()
