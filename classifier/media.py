"""Stored prediction images (/media/...), served with the same access rule as the audit log."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from django.views.static import serve

from classifier import throttles
from classifier.ownership import stored_image_visible_to


@require_safe
@throttles.throttle_get(throttles.MEDIA)
def protected_media(request: HttpRequest, path: str) -> HttpResponse:
    """The image of a prediction the reader may see (classifier.ownership), and nothing else:
    a job's staged chunks under jobs/ are served to nobody, their owner included.

    Images are not public: the audit log needs a login to read. 404 rather than
    403 so that the existence of a file is not revealed.
    """
    if not stored_image_visible_to(name=path, user=request.user, session=request.session):
        raise Http404
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Cache-Control"] = "private, max-age=3600"
    return response
