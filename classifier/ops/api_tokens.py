"""API tokens ("Authorization: Token ...") read outside the API's own views."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.authentication import TokenAuthentication


def api_token_user(request: HttpRequest) -> Any | None:
    """The user the request's API token names, checked as the API checks it (DRF's
    TokenAuthentication); None when no token was sent. Raises AuthenticationFailed for a
    token that names nobody. request.user is left as it is."""
    # Asked directly, not through a DRF Request, whose user setter would change request.user.
    authenticated = TokenAuthentication().authenticate(request)
    return authenticated[0] if authenticated is not None else None
