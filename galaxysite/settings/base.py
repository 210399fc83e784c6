"""Settings for the Galaxy Classifier, read from the environment (django-environ).

Every variable is documented in .env.example. The defaults are production-safe:
DEBUG is off, SECRET_KEY must be provided, cookies are secure and HTTPS is
enforced unless the environment says otherwise.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]

env = environ.Env()
# An optional .env file (ignored by git) lets `make run` keep its generated secret.
ENV_FILE = Path(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(ENV_FILE)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
_NEW_KEY_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
# Values copied from examples and tutorials: a site signed with one of them can be forged.
_PLACEHOLDER_KEYS = {"change-me", "changeme", "change-me-too", "secret", "secret-key", "your-secret-key"}
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off; {_NEW_KEY_HINT}."
        )
    SECRET_KEY = "django-insecure-debug-only-key-never-use-in-production"  # noqa: S105
elif not DEBUG:
    if SECRET_KEY.strip().lower() in _PLACEHOLDER_KEYS or SECRET_KEY.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is a placeholder ({SECRET_KEY[:20]!r}), not a secret; {_NEW_KEY_HINT}."
        )
    # Django's own deployment check (security.W009) asks for this much, and only warns.
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is too short or too simple ({len(SECRET_KEY)} characters, "
            f"{len(set(SECRET_KEY))} different): use at least 50 random characters; {_NEW_KEY_HINT}."
        )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "classifier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Early, so every response gets them, the early 413 and 503 pages included (issue 14 item 10).
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (it reads the chosen language) and before CommonMiddleware.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so its 413 page has the session, language and user; it still runs before
    # anything reads the body (CSRF reads the form only in process_view).
    "classifier.ops.middleware.RequestSizeLimitMiddleware",
    "classifier.ops.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "galaxysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "galaxysite.wsgi.application"

# SQLite is the embedded default; DATABASE_URL=postgres://... selects PostgreSQL (psycopg 3).
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# A dropped connection is noticed before use, so the app recovers when the DB comes back.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The rate limits and the login lockout count in this cache, so it must be one that every
# worker process shares: the database (no extra server; migration 0003 makes the table) by
# default, or Redis with CACHE_URL=redis://host:6379/N.
CACHES = {"default": env.cache("CACHE_URL", default="dbcache://django_cache")}
# Django's database cache writes with five statements; this one with one (classifier/ops/cache.py).
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache":
    CACHES["default"]["BACKEND"] = "classifier.ops.cache.DatabaseCache"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out login before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes, its records in the database): after AXES_FAILURE_LIMIT
# failures from one address, or for one username from anywhere, logins from it/for it are
# refused until AXES_COOLOFF_MINUTES pass. Unknown usernames count and answer exactly as
# known ones do, so a lockout reveals nothing about which accounts exist (SECURITY.md).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_CLIENT_IP_CALLABLE = "classifier.ops.client_ip.request_client_ip"
AXES_VERBOSE = False

# Outgoing mail, used by password reset only: EMAIL_URL as django-environ reads it
# (smtp+tls://user:password@host:587). Unset, the reset pages answer 404 rather than hand
# the mail to Django's default, localhost:25 (classifier/web/accounts.py).
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en"
# English is the source language; Spanish is shipped in locale/ (compiled .mo files are committed).
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media")))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}

# Uploads: bigger files are refused with 413, before anything is decoded.
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
MAX_FILES_PER_REQUEST = env.int("MAX_FILES_PER_REQUEST", default=32)
MAX_IMAGE_PIXELS = env.int("MAX_IMAGE_PIXELS", default=40_000_000)
# Memory that decoding one image may take (its decoded buffer: pixels x bytes per pixel of
# its mode, after a JPEG's reduced-scale decode), and that one process's concurrent decodes
# may hold together. Together they keep a worker within its memory target (docs/uploads.md).
MAX_DECODE_BYTES = env.int("MAX_DECODE_BYTES", default=10_000_000)
DECODE_MEMORY_BUDGET = env.int("DECODE_MEMORY_BUDGET", default=MAX_DECODE_BYTES)
# Django's own cap on a whole request body; a full batch of maximum-size files must fit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# Larger uploaded files are spooled to a temporary file rather than held in a worker's memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=262_144)
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_FILES_PER_REQUEST + 1
# The whole request body: a full batch of maximum-size files plus room for the
# multipart framing and the form fields. Larger requests get 413 before being read.
MAX_REQUEST_BYTES = env.int(
    "MAX_REQUEST_BYTES", default=MAX_UPLOAD_BYTES * MAX_FILES_PER_REQUEST + DATA_UPLOAD_MAX_MEMORY_SIZE
)
FILE_UPLOAD_PERMISSIONS = 0o644

# The model: ml/models/galaxy10.tflite with its manifest alongside.
MODEL_PATH = Path(env.str("MODEL_PATH", default=str(BASE_DIR / "ml" / "models" / "galaxy10.tflite")))
MODEL_MANIFEST = Path(env.str("MODEL_MANIFEST", default=str(MODEL_PATH.with_suffix(".json"))))
TFLITE_BACKEND = env.str("TFLITE_BACKEND", default="auto")
TFLITE_NUM_THREADS = env.int("TFLITE_NUM_THREADS", default=1)

ALLOW_ANONYMOUS_PREDICT = env.bool("ALLOW_ANONYMOUS_PREDICT", default=True)
# How long an anonymous visitor's session may read back what it uploaded (SECURITY.md,
# "Anonymous uploads"). The session key also changes with every upload and at login.
ANONYMOUS_OWNERSHIP_SECONDS = env.int("ANONYMOUS_OWNERSHIP_SECONDS", default=24 * 3600)
# Top-1 confidence below which result pages highlight the top-2 classes as a close call.
UNSURE_CONFIDENCE_THRESHOLD = env.float("UNSURE_CONFIDENCE_THRESHOLD", default=0.5)

# --- Classification jobs (Celery; issue 11) ---
# With no broker configured, jobs go through a folder on this machine (kombu's filesystem
# transport), so `make run` runs them end to end with no server; CELERY_BROKER_URL=redis://...
# or amqp://... points every web process and worker at a shared broker instead.
# The host is there for kombu, which warns on every connection without one; galaxysite/celery.py
# completes a bare filesystem:// given in the environment.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
JOB_QUEUE_DIR = Path(env.str("JOB_QUEUE_DIR", default=str(BASE_DIR / "var" / "job-queue")))
# Images per task. A chunk is recorded in one transaction at its end, so a chunk cut short
# (its worker died) recorded nothing and is run again whole by the next delivery.
JOB_CHUNK_SIZE = env.int("JOB_CHUNK_SIZE", default=64)
# A chunk whose database or storage is down is retried with delays 1, 2, 4 ... growing to
# JOB_RETRY_DELAY_MAX_S: 20 retries ride out about 8 minutes of outage, after which the job
# fails with the reason.
JOB_MAX_RETRIES = env.int("JOB_MAX_RETRIES", default=20)
JOB_RETRY_DELAY_MAX_S = 30
# The longest one member may take inside a chunk, to size the Redis visibility timeout below:
# the slowest image the upload limits accept decodes, classifies and records in about 0.05 s
# here (docs/scaling.md); 1 s leaves room for a loaded machine and object storage round trips.
JOB_MEMBER_SECONDS = env.float("JOB_MEMBER_SECONDS", default=1.0)
# Every broker call of a web process or worker gives up after this many seconds (connecting,
# each Redis command, each AMQP read, write and publish confirmation): a broker that accepts
# connections and never answers costs a submission a few seconds and a 503, not a thread.
_BROKER_TIMEOUT_S = env.float("CELERY_BROKER_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_TIMEOUT = _BROKER_TIMEOUT_S
# One retry, on a fresh connection: a pooled one that a restarted RabbitMQ dropped fails at
# once, and the retry gets through. A publish then gives up within about 3 x the timeout
# above plus 0.5 s (the failed call, the reconnection, closing the dead connection): 6.5 s.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0.5,
    "interval_step": 0,
    "interval_max": 0.5,
}
if CELERY_BROKER_URL.startswith("filesystem:"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(JOB_QUEUE_DIR),
        "data_folder_out": str(JOB_QUEUE_DIR),
        "control_folder": str(JOB_QUEUE_DIR / "control"),
        "polling_interval": 0.2,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://")):
    # Redis gives a chunk that was never acknowledged (its worker was killed, or its machine
    # lost) to another worker once it has been out this long. It must exceed the longest a
    # live worker holds a chunk, or that chunk runs twice (recorded once, paid twice): up to
    # JOB_RETRY_DELAY_MAX_S waiting for a retry's countdown, then the chunk itself at
    # JOB_MEMBER_SECONDS a member. 30 + 64 x 1 = 94 s by default, so a killed worker's chunk
    # runs again within 2 minutes (docs/scaling.md has the derivation, and what longer chunks
    # need). Set JOB_CHUNK_SIZE and JOB_MEMBER_SECONDS alike on web and worker machines.
    _VISIBILITY_TIMEOUT = env.int(
        "CELERY_VISIBILITY_TIMEOUT",
        default=round(JOB_RETRY_DELAY_MAX_S + JOB_MEMBER_SECONDS * JOB_CHUNK_SIZE),
    )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _VISIBILITY_TIMEOUT,
        # Every live worker (a survivor, or one started later) looks for overdue chunks this
        # often, whoever took them.
        "unacked_restore_interval": max(1, min(10, _VISIBILITY_TIMEOUT // 3)),
        "unacked_restore_throttle": 1,
        # The lock around a restore scan (milliseconds of work) outlives a worker killed while
        # holding it, holding back every redelivery until it expires: kombu's default is 300 s.
        # Two scans at once are harmless (each chunk is restored in a transaction that watches it).
        "unacked_mutex_expire": min(30, _VISIBILITY_TIMEOUT),
        "socket_timeout": _BROKER_TIMEOUT_S,
        "socket_connect_timeout": _BROKER_TIMEOUT_S,
    }
else:
    # RabbitMQ hands a chunk back as soon as its worker's connection drops (at once for a
    # killed process; after missed heartbeats, broker_heartbeat = 120 s, for a lost machine).
    # Publishes wait for the broker's confirmation, so a queued chunk is really queued.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "confirm_publish": True,
        "read_timeout": _BROKER_TIMEOUT_S,
        "write_timeout": _BROKER_TIMEOUT_S,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="jobs")
# At-least-once delivery: a chunk is acknowledged when it ends, and handed out again if the
# process running it dies (tasks.py relies on it).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
JOB_MAX_ARCHIVE_BYTES = env.int("JOB_MAX_ARCHIVE_BYTES", default=2 * 1024**3)
JOB_MAX_UNCOMPRESSED_BYTES = env.int("JOB_MAX_UNCOMPRESSED_BYTES", default=8 * 1024**3)
JOB_MAX_COMPRESSION_RATIO = env.int("JOB_MAX_COMPRESSION_RATIO", default=100)
JOB_MAX_MEMBERS = env.int("JOB_MAX_MEMBERS", default=200_000)
# --- end of classification jobs ---

# --- classify by position (docs/positions.md) ---
# A URL template with {ra} and {dec} in degrees. The default is the Legacy Surveys viewer's
# JPEG cutout at Galaxy10 DECaLS's framing: 256x256 pixels at 0.524"/pixel, g/r/z colour.
CUTOUT_URL = env.str(
    "CUTOUT_URL",
    default="https://www.legacysurvey.org/viewer/jpeg-cutout?ra={ra}&dec={dec}&layer=ls-dr10&pixscale=0.524&size=256",
)
CUTOUT_CONNECT_TIMEOUT_S = env.float("CUTOUT_CONNECT_TIMEOUT_S", default=3.0)
CUTOUT_READ_TIMEOUT_S = env.float("CUTOUT_READ_TIMEOUT_S", default=10.0)
CUTOUT_RETRIES = env.int("CUTOUT_RETRIES", default=2)
CUTOUT_BACKOFF_S = env.float("CUTOUT_BACKOFF_S", default=0.5)
# Fetches in flight at once per process (web worker or Celery pool process).
CUTOUT_MAX_CONCURRENT = env.int("CUTOUT_MAX_CONCURRENT", default=4)
# Named in the User-Agent so the survey's operators can reach whoever runs this site.
CUTOUT_CONTACT_URL = env.str("CUTOUT_CONTACT_URL", default="")
CUTOUT_CACHE_SECONDS = env.int("CUTOUT_CACHE_SECONDS", default=30 * 24 * 3600)
CUTOUT_MAX_BYTES = env.int("CUTOUT_MAX_BYTES", default=2 * 1024 * 1024)
# --- end of classify by position ---

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
    # Set below from TRUSTED_PROXY_HOPS: the connecting address, or exactly that many entries
    # from the end of X-Forwarded-For behind a proxy, so a client cannot choose its identity.
    "NUM_PROXIES": 0,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "classifier.api.errors.exception_handler",
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
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "GalaxyClassEnum": "classifier.models.CLASS_CHOICES",
        "PredictionSourceEnum": "classifier.models.Prediction.Source",
        "JobStatusEnum": "classifier.models.Job.Status",
        "JobMemberStatusEnum": "classifier.models.JobMember.Status",
    },
}

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
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_HOPS
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes come over plain HTTP from inside the container/orchestrator.
SECURE_REDIRECT_EXEMPT = [r"^api/health/"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}

# --- Content-Security-Policy (issue 14 item 10) ---
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
# --- Operations (issue 12; docs/operations.md) ------------------------------------------------------
INSTALLED_APPS += ["django_prometheus", "dbbackup"]

# Error pages: styled, translated pages; JSON under /api/ (classifier/web/error_views.py, galaxysite/urls.py).
CSRF_FAILURE_VIEW = "classifier.web.error_views.csrf_failure"
# An unknown ?format= is a documented JSON 406 on every operation (classifier/api/negotiation.py).
REST_FRAMEWORK["DEFAULT_CONTENT_NEGOTIATION_CLASS"] = "classifier.api.negotiation.ApiContentNegotiation"
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "classifier.api.negotiation.add_not_acceptable_responses",
]

# Metrics and request ids. The request id first, so every later line of a request carries it;
# the Prometheus pair around everything else, so the latency covers the whole stack.
MIDDLEWARE = [
    "classifier.ops.request_ids.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# The same backends wrapped by django-prometheus: queries, errors and failed connections counted.
DATABASES["default"]["ENGINE"] = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}.get(DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"])
# /metrics answers loopback callers (unless behind a proxy) and bearers of this token; 404 otherwise.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOW_LOOPBACK = env.bool("METRICS_ALLOW_LOOPBACK", default=True)
# Prometheus scrapes over plain HTTP from inside the network, like the health probes.
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]

# Logs: plain or JSON lines, each with the request id.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")
# One "request" event per request; on by default with JSON logs, where it replaces
# gunicorn's access line (galaxysite/gunicorn.py).
LOG_REQUESTS = env.bool("LOG_REQUESTS", default=LOG_FORMAT == "json")
LOGGING["filters"] = {"request_id": {"()": "classifier.ops.request_ids.RequestIdFilter"}}
LOGGING["formatters"] = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    },
}
LOGGING["handlers"]["console"].update({"formatter": LOG_FORMAT, "filters": ["request_id"]})
if LOG_FORMAT == "json":
    # Python warnings become log records (JSON lines) instead of bare text on stderr.
    logging.captureWarnings(True)

# Model roll-out: the folder of model versions that `manage.py models` works on.
MODEL_REPOSITORY = Path(env.str("MODEL_REPOSITORY", default=str(MODEL_PATH.parent)))

# Backups (django-dbbackup): `manage.py dbbackup` and `mediabackup` write here, `dbrestore` and
# `mediarestore` read the newest from here. PostgreSQL needs pg_dump and pg_restore.
BACKUP_DIR = Path(env.str("DJANGO_BACKUP_DIR", default=str(BASE_DIR / "backups")))
# Backups hold every record and the API tokens: files 0600 in a 0700 folder (classifier/ops/backups.py).
STORAGES["dbbackup"] = {
    "BACKEND": "classifier.ops.backups.PrivateFileSystemStorage",
    "OPTIONS": {"location": str(BACKUP_DIR)},
}
DBBACKUP_SEND_EMAIL = False
# `dbbackup --encrypt` / `mediabackup --encrypt` encrypt to this GPG key (a fingerprint or an
# e-mail in the keyring of GNUPGHOME); `dbrestore --decrypt` needs the private key.
DBBACKUP_GPG_RECIPIENT = env.str("DJANGO_BACKUP_GPG_RECIPIENT", default="") or None
# Trust the recipient's key without it being signed in the keyring (a key imported for backups only).
DBBACKUP_GPG_ALWAYS_TRUST = env.bool("DJANGO_BACKUP_GPG_ALWAYS_TRUST", default=False)

# Secret key rotation: the previous key(s) keep sessions and signed links valid until they expire.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
# --- end of operations (issue 12) -------------------------------------------------------------------
