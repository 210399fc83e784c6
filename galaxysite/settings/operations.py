"""Operations (docs/operations.md): logs, metrics, the model roll-out folder and backups."""

from __future__ import annotations

import logging
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from galaxysite.settings.base import MODEL_PATH, env

# Logs: plain or JSON lines, each with the request id.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")
# One "request" event per request; on by default with JSON logs, where it replaces
# gunicorn's access line (galaxysite/gunicorn.py).
LOG_REQUESTS = env.bool("LOG_REQUESTS", default=LOG_FORMAT == "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "classifier.ops.request_ids.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
if LOG_FORMAT == "json":
    # Python warnings become log records (JSON lines) instead of bare text on stderr.
    logging.captureWarnings(True)

# /metrics answers loopback callers (unless behind a proxy) and bearers of this token; 404 otherwise.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOW_LOOPBACK = env.bool("METRICS_ALLOW_LOOPBACK", default=True)

# Model roll-out: the folder of model versions that `manage.py models` works on.
MODEL_REPOSITORY = Path(env.str("MODEL_REPOSITORY", default=str(MODEL_PATH.parent)))

# Backups (django-dbbackup) go to BACKUP_DIR (base.py); PostgreSQL needs pg_dump and pg_restore.
DBBACKUP_SEND_EMAIL = False
# SQLite restores write into the live database through SQLite's backup API instead of over its
# file, which would leave the write-ahead log of open connections out of step with it.
DBBACKUP_CONNECTOR_MAPPING = {
    "django_prometheus.db.backends.sqlite3": "classifier.ops.backups.SqliteOnlineConnector",
}
# `dbbackup --encrypt` / `mediabackup --encrypt` encrypt to this GPG key (a fingerprint or an
# e-mail in the keyring of GNUPGHOME); `dbrestore --decrypt` needs the private key.
DBBACKUP_GPG_RECIPIENT = env.str("DJANGO_BACKUP_GPG_RECIPIENT", default="") or None
# Trust the recipient's key without it being signed in the keyring (a key imported for backups only).
DBBACKUP_GPG_ALWAYS_TRUST = env.bool("DJANGO_BACKUP_GPG_ALWAYS_TRUST", default=False)
