"""Django's password reset and change pages, rate-limited, and reset only where mail is set up.

Reset sends a mail per request: without outgoing mail configured (EMAIL_URL) Django's
default backend would hand it to localhost:25, so the reset pages answer 404 instead of
pretending to send. Both are throttled in the shared cache (classifier.ops.throttles): reset
per client address and per address mailed, change per user. Logins keep django-axes'
lockout; a password change checks the old password without logging in, so axes does not
count it, and the throttle bounds the guesses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from classifier.ops import throttles
from classifier.ops.request_ids import loggable_path
from classifier.web.error_views import page_not_found

logger = logging.getLogger("django.request")

# Backends that deliver nothing: a reset mail through them reaches nobody.
_UNDELIVERED_BACKENDS = frozenset(
    {
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
    }
)


def password_reset_by_mail() -> bool:
    """Whether outgoing mail is configured, so a reset link can reach its owner."""
    return bool(settings.EMAIL_URL) and settings.EMAIL_BACKEND not in _UNDELIVERED_BACKENDS


def _not_found(request: HttpRequest) -> HttpResponse:
    response = page_not_found(request)
    # Django would log the path, and a reset link's path holds its token: logged masked instead.
    logger.warning("Not Found: %s", loggable_path(request.path))
    # How Django itself marks a response it must not log again (django.utils.log.log_response).
    response._has_been_logged = True
    return response


def _mail_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not password_reset_by_mail():
            return _not_found(request)
        return view(request, *args, **kwargs)

    return wrapper


def _throttle_posts(view: Callable[..., HttpResponse], *, scope: str, by_email: bool = False) -> Callable:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            if refused := throttles.throttled(request, scope):
                return refused
            email = request.POST.get("email", "") if by_email else ""
            # Per address too, so many clients together cannot fill one person's mailbox.
            ident = throttles.address_ident(email)
            if email and (refused := throttles.throttled(request, scope, ident=ident)):
                return refused
        return view(request, *args, **kwargs)

    return wrapper


password_reset = _mail_required(
    _throttle_posts(auth_views.PasswordResetView.as_view(), scope=throttles.PASSWORD_RESET, by_email=True)
)
password_reset_done = _mail_required(auth_views.PasswordResetDoneView.as_view())
password_reset_confirm = _mail_required(
    _throttle_posts(auth_views.PasswordResetConfirmView.as_view(), scope=throttles.PASSWORD_RESET)
)
password_reset_complete = _mail_required(auth_views.PasswordResetCompleteView.as_view())
password_change = _throttle_posts(auth_views.PasswordChangeView.as_view(), scope=throttles.PASSWORD_CHANGE)
