"""Settings for the Galaxy Classifier, read from the environment (django-environ).

Every variable is documented in .env.example. The defaults are production-safe:
DEBUG is off, SECRET_KEY must be provided, cookies are secure and HTTPS is
enforced unless the environment says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# An optional .env file (ignored by git) lets `make run` keep its generated secret.
ENV_FILE = Path(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(ENV_FILE)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-debug-only-key-never-use-in-production"  # noqa: S105

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
    "classifier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
    "classifier.middleware.RequestSizeLimitMiddleware",
    "classifier.middleware.DatabaseUnavailableMiddleware",
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

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

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
# Django's own cap on a whole request body; a full batch of maximum-size files must fit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
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
# Top-1 confidence below which result pages highlight the top-2 classes as a close call.
UNSURE_CONFIDENCE_THRESHOLD = env.float("UNSURE_CONFIDENCE_THRESHOLD", default=0.5)

# --- Classification jobs (Celery; issue 11) ---
# With no broker configured, jobs go through a folder on this machine (kombu's filesystem
# transport), so `make run` runs them end to end with no server; CELERY_BROKER_URL=redis://...
# or amqp://... points every web process and worker at a shared broker instead.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
JOB_QUEUE_DIR = Path(env.str("JOB_QUEUE_DIR", default=str(BASE_DIR / "var" / "job-queue")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(JOB_QUEUE_DIR),
        "data_folder_out": str(JOB_QUEUE_DIR),
        "control_folder": str(JOB_QUEUE_DIR / "control"),
        "polling_interval": 0.2,
    }
else:
    # Redis hands a chunk whose worker machine died (never acknowledged) to another worker after
    # this many seconds; it must stay longer than a chunk takes, or chunks run twice (harmlessly).
    _VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _VISIBILITY_TIMEOUT,
        "unacked_restore_interval": max(1, min(10, _VISIBILITY_TIMEOUT // 3)),
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="jobs")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
JOB_CHUNK_SIZE = env.int("JOB_CHUNK_SIZE", default=64)
JOB_MAX_ARCHIVE_BYTES = env.int("JOB_MAX_ARCHIVE_BYTES", default=2 * 1024**3)
JOB_MAX_UNCOMPRESSED_BYTES = env.int("JOB_MAX_UNCOMPRESSED_BYTES", default=8 * 1024**3)
JOB_MAX_COMPRESSION_RATIO = env.int("JOB_MAX_COMPRESSION_RATIO", default=100)
JOB_MAX_MEMBERS = env.int("JOB_MAX_MEMBERS", default=200_000)
# A chunk whose database or storage is down is retried with delays growing to 30 s: 20 retries
# ride out about 8 minutes of outage, after which the job fails with the reason.
JOB_MAX_RETRIES = env.int("JOB_MAX_RETRIES", default=20)
# --- end of classification jobs ---

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
        "rest_framework.parsers.JSONParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=25),
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_ANON_THROTTLE_RATE", default="60/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "classifier.api.views.exception_handler",
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
