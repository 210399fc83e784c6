"""The caller's address, as the rate limits and the login lockout (django-axes) both see it."""

from __future__ import annotations

import ipaddress

from rest_framework.throttling import BaseThrottle


def request_client_ip(request) -> str | None:  # noqa: ANN001
    """The caller's address, by the one rule the rate limits and the login lockout use too:
    the connecting address, or behind TRUSTED_PROXY_HOPS proxies the X-Forwarded-For entry
    that the outermost trusted proxy appended (DRF's NUM_PROXIES rule)."""
    try:
        return str(ipaddress.ip_address(BaseThrottle().get_ident(request)))
    except ValueError:
        return None
