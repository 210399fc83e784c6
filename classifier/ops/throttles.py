"""Rate limits for the pages: uploads, pages and files that cost work to serve, the account pages.

They are DRF's throttles, counted in the shared cache (CACHES) like the API's, so every worker
process counts the same requests, and a page refused answers through one function (throttled).
A scope's rate is read from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] when the request comes
(not when this module is imported), so changed settings apply at once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle

from classifier.ops.responses import refusal

# Stored images and FITS previews: a history page shows 24 at once.
MEDIA = "media"
# Result downloads (CSV, JSON): each one reads and serialises a whole result set.
DOWNLOADS = "downloads"
# Password reset requests, each of which sends a mail, per client and per address mailed.
PASSWORD_RESET = "password_reset"  # noqa: S105 - a scope name, not a password
# Password change attempts of one user (each checks a password hash).
PASSWORD_CHANGE = "password_change"  # noqa: S105 - a scope name, not a password


class ScopedThrottle(SimpleRateThrottle):
    """One scope's limit for a logged-in user (by id) or an anonymous client (by address, as
    REST_FRAMEWORK["NUM_PROXIES"] says), or for ``ident`` when one is given."""

    def __init__(self, scope: str, *, ident: str | None = None) -> None:
        self.scope = scope
        self.ident = ident
        super().__init__()

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: HttpRequest, view: Any) -> str | None:
        if self.ident is not None:
            ident = self.ident
        elif request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def retry_after(request: HttpRequest, throttle: BaseThrottle) -> int | None:
    """None if ``request`` is within ``throttle``'s rate (and it is counted), else the whole
    seconds to wait."""
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def throttled(
    request: HttpRequest,
    scope: str | BaseThrottle,
    *,
    ident: str | None = None,
    message: str | None = None,
    page: Callable[[str], HttpResponse] | None = None,
) -> HttpResponse | None:
    """A 429 response with Retry-After if ``request`` is over its ``scope``'s rate (a
    ScopedThrottle's, or the throttle given), else None (and the request is counted).
    ``message`` is a %(seconds)s template; ``page`` renders it for a browser, which
    otherwise reads it as plain text."""
    throttle = ScopedThrottle(scope, ident=ident) if isinstance(scope, str) else scope
    seconds = retry_after(request, throttle)
    if seconds is None:
        return None
    text = (message or _("Too many requests. Try again in %(seconds)s seconds.")) % {"seconds": seconds}
    render_page = None if page is None else lambda: page(text)
    return refusal(request, 429, text, retry_after=seconds, page=render_page)


def upload_throttled(request: HttpRequest, page: Callable[[str], HttpResponse]) -> HttpResponse | None:
    """The upload pages' limit: the API's anonymous rate, counted in the same cache under the
    same key, so the pages and the API together allow one rate per client."""
    return throttled(
        request,
        AnonRateThrottle(),
        message=_("Too many uploads from your address. Try again in %(seconds)s seconds."),
        page=page,
    )


def address_ident(address: str) -> str:
    """A cache-key-safe identity for an e-mail address (its case folded), not the address itself."""
    return "mail-" + hashlib.sha256(address.strip().casefold().encode()).hexdigest()[:32]


def throttle_get(scope: str) -> Callable:
    """A decorator for a view function: its GET (and HEAD) requests are limited to ``scope``'s rate."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in ("GET", "HEAD") and (refused := throttled(request, scope)):
                return refused
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
