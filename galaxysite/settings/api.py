"""The API: Django REST framework and its OpenAPI schema (drf-spectacular)."""

from __future__ import annotations

from galaxysite.settings.base import env
from galaxysite.settings.security import TRUSTED_PROXY_HOPS

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: unauthenticated API calls then get 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
        "classifier.api.parsers.JSONParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=25),
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_ANON_THROTTLE_RATE", default="60/minute"),
        # Pages and files that cost work to serve, per user or client (classifier/ops/throttles.py):
        # stored images and FITS previews (a history page shows 24), result downloads, and
        # password reset (per client and per address mailed) and change attempts.
        "media": env.str("MEDIA_THROTTLE_RATE", default="300/minute"),
        "downloads": env.str("DOWNLOAD_THROTTLE_RATE", default="30/minute"),
        "password_reset": env.str("PASSWORD_RESET_THROTTLE_RATE", default="5/hour"),
        "password_change": env.str("PASSWORD_CHANGE_THROTTLE_RATE", default="10/hour"),
    },
    # The connecting address, or exactly TRUSTED_PROXY_HOPS entries from the end of
    # X-Forwarded-For behind a proxy, so a client cannot choose its identity.
    "NUM_PROXIES": TRUSTED_PROXY_HOPS,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "classifier.api.errors.exception_handler",
    # An unknown ?format= is a documented JSON 406 on every operation (classifier/api/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "classifier.api.negotiation.ApiContentNegotiation",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Galaxy Classifier API",
    "DESCRIPTION": "Classify galaxy images into the 10 Galaxy10 DECaLS classes and read the audit log.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "GalaxyClassEnum": "classifier.models.CLASS_CHOICES",
        "PredictionSourceEnum": "classifier.models.Prediction.Source",
        "JobStatusEnum": "classifier.models.Job.Status",
        "JobMemberStatusEnum": "classifier.models.JobMember.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "classifier.api.negotiation.add_not_acceptable_responses",
    ],
}
