"""Stored prediction images (/media/...), served with the same access rule as the audit log."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from django.views.static import serve

from classifier.ownership import stored_image_visible_to


@require_safe
def protected_media(request: HttpRequest, path: str) -> HttpResponse:
    """Logged-in users see every image; anonymous visitors only those they uploaded.

    Images are not public: the audit log needs a login to read. 404 rather than
    403 so that the existence of an image is not revealed.
    """
    if not stored_image_visible_to(name=path, user=request.user, session=request.session):
        raise Http404
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Cache-Control"] = "private, max-age=3600"
    return response
