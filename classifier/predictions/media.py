"""Stored prediction images (/media/...), served with the same access rule as the audit log."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from django.views.static import serve
from rest_framework.exceptions import AuthenticationFailed

from classifier.ops import throttles
from classifier.ops.api_tokens import api_token_user
from classifier.predictions.ownership import stored_image_visible_to, visible_prediction


def accept_api_token(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let a script that holds an API token ("Authorization: Token ...") read what its user
    may read: the API's image_url points here, and a session cookie is not what scripts hold.

    The token is checked as the API checks it (classifier.ops.api_tokens); the user it
    names then goes through the same access rule (classifier.predictions.ownership) and the same per-user
    rate limit as a logged-in browser. A token that names nobody gets 401, as from the API.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            try:
                user = api_token_user(request)
            except AuthenticationFailed as exc:
                response = HttpResponse(str(exc.detail), status=401, content_type="text/plain; charset=utf-8")
                response["WWW-Authenticate"] = "Token"
                return response
            if user is not None:
                # For this request only: no session is created or changed.
                request.user = user
        return view(request, *args, **kwargs)

    return wrapper


@require_safe
@accept_api_token
@throttles.throttle_get(throttles.MEDIA)
def protected_media(request: HttpRequest, path: str) -> HttpResponse:
    """The image of a prediction the reader may see (classifier.predictions.ownership), and nothing else:
    a job's staged chunks under jobs/ are served to nobody, their owner included.

    Images are not public: the audit log needs a login to read. 404 rather than
    403 so that the existence of a file is not revealed.
    """
    if not stored_image_visible_to(name=path, user=request.user, session=request.session):
        raise Http404
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_safe
@accept_api_token
@throttles.throttle_get(throttles.MEDIA)
def prediction_original(request: HttpRequest, pk: int) -> HttpResponse:
    """The stored file of a prediction (a FITS upload included), as a download under the name
    it was uploaded with; by the same rule as /media/, a 404 for anyone who may not see it.

    What is stored is what was classified: the uploaded bytes, less the header keywords and
    metadata the upload checks strip (docs/uploads.md, docs/fits.md).
    """
    prediction = visible_prediction(pk=pk, user=request.user, session=request.session)
    if prediction is None:
        raise Http404
    try:
        handle = prediction.image.open("rb")
    except OSError as exc:
        raise Http404 from exc
    response = FileResponse(
        handle, as_attachment=True, filename=prediction.original_filename.rsplit("/", 1)[-1]
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response
