"""HTTPS, proxies, cookies and the headers that limit what a page may load or use (SECURITY.md)."""

from __future__ import annotations

from galaxysite.settings.base import DEBUG, env

# HTTPS hardening, on by default whenever DEBUG is off. `make run` serves plain
# HTTP on loopback and switches the HTTPS-only parts off in its generated .env.
SECURE_HTTPS = env.bool("DJANGO_SECURE_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=SECURE_HTTPS)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=SECURE_HTTPS)
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
# Proxies between the client and the app, each appending one X-Forwarded-For entry; the
# forwarded headers are ignored entirely when no proxy is configured.
TRUSTED_PROXY_HOPS = env.int("DJANGO_TRUSTED_PROXY_HOPS", default=1) if BEHIND_PROXY else 0
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes come over plain HTTP from inside the container/orchestrator, and Prometheus
# scrapes /metrics the same way from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/health/", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Error pages: styled, translated pages; JSON under /api/ (classifier/web/error_views.py, galaxysite/urls.py).
CSRF_FAILURE_VIEW = "classifier.web.error_views.csrf_failure"

# Every page loads its scripts, styles, fonts and images from this origin only, and
# runs no inline script or style; the upload previews are blob: URLs. Only the API docs
# page adds data: images, for Swagger UI (galaxysite/urls.py). SECURITY.md explains it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
# Powerful browser features that no page here uses, denied to the pages and any frame.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
