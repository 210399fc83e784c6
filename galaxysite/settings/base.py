"""Django itself: the secret, hosts, apps, middleware, database, cache, accounts, languages,
files, uploads and the model. Read from the environment (django-environ); every variable is
documented in .env.example, and the defaults are production-safe: DEBUG is off and
SECRET_KEY must be provided.
"""

from __future__ import annotations

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

_GIVEN_KEY = env.str("DJANGO_SECRET_KEY", default="")
_NEW_KEY_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
# Values copied from examples and tutorials: a site signed with one of them can be forged.
_PLACEHOLDER_KEYS = {"change-me", "changeme", "change-me-too", "secret", "secret-key", "your-secret-key"}
if not _GIVEN_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off; {_NEW_KEY_HINT}."
        )
elif not DEBUG:
    if _GIVEN_KEY.strip().lower() in _PLACEHOLDER_KEYS or _GIVEN_KEY.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is a placeholder ({_GIVEN_KEY[:20]!r}), not a secret; {_NEW_KEY_HINT}."
        )
    # Django's own deployment check (security.W009) asks for this much, and only warns.
    if len(_GIVEN_KEY) < 50 or len(set(_GIVEN_KEY)) < 5:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is too short or too simple ({len(_GIVEN_KEY)} characters, "
            f"{len(set(_GIVEN_KEY))} different): use at least 50 random characters; {_NEW_KEY_HINT}."
        )
# DEBUG without a key gets one marked insecure, which the checks above refuse with DEBUG off.
SECRET_KEY = _GIVEN_KEY or "django-insecure-debug-only-key-never-use-in-production"

# Secret key rotation: the previous key(s) keep sessions and signed links valid until they expire.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])

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
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "classifier",
    "django_prometheus",
    "dbbackup",
]

MIDDLEWARE = [
    # The request id first, so every later line of a request carries it (classifier/ops/request_ids.py).
    "classifier.ops.request_ids.RequestIdMiddleware",
    # The Prometheus pair around everything else, so the latency covers the whole stack.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Early, so every response gets them, the early 413 and 503 pages included.
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
    # Last but the Prometheus pair's end, as django-axes asks: it turns a locked-out login
    # into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
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
_DATABASE = env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
_DATABASE["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# A dropped connection is noticed before use, so the app recovers when the DB comes back.
_DATABASE["CONN_HEALTH_CHECKS"] = True
if _DATABASE["ENGINE"] == "django.db.backends.postgresql":
    _DATABASE.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
if _DATABASE["ENGINE"] == "django.db.backends.sqlite3":
    # Write-ahead log: a commit appends to the log instead of journalling and syncing the
    # database file, the embedded default's largest cost per upload (docs/benchmarks.md, issue
    # 22), and readers no longer block the writer. synchronous=NORMAL syncs at checkpoints: a
    # killed process loses nothing; an OS crash or power cut may undo the last commits
    # (PostgreSQL is the production database). Restores go through the online backup API
    # (classifier/ops/backups.py), never over the file, so the log stays in step.
    _DATABASE.setdefault("OPTIONS", {}).setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
# The same backends wrapped by django-prometheus: queries, errors and failed connections counted.
_DATABASE["ENGINE"] = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}.get(_DATABASE["ENGINE"], _DATABASE["ENGINE"])
DATABASES = {"default": _DATABASE}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The rate limits and the login lockout count in this cache, so it must be one that every
# worker process shares: the database (no extra server; migration 0003 makes the table) by
# default, or Redis with CACHE_URL=redis://host:6379/N.
_CACHE = env.cache("CACHE_URL", default="dbcache://django_cache")
# Django's database cache writes with five statements; this one with one (classifier/ops/cache.py).
if _CACHE["BACKEND"] == "django.core.cache.backends.db.DatabaseCache":
    _CACHE["BACKEND"] = "classifier.ops.cache.DatabaseCache"
CACHES = {"default": _CACHE}

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

# Backups (django-dbbackup; operations.py): `manage.py dbbackup` and `mediabackup` write here,
# `dbrestore` and `mediarestore` read the newest from here.
BACKUP_DIR = Path(env.str("DJANGO_BACKUP_DIR", default=str(BASE_DIR / "backups")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
    # Backups hold every record and the API tokens: files 0600 in a 0700 folder (classifier/ops/backups.py).
    "dbbackup": {
        "BACKEND": "classifier.ops.backups.PrivateFileSystemStorage",
        "OPTIONS": {"location": str(BACKUP_DIR)},
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
