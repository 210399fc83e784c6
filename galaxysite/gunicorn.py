"""gunicorn settings shared by `make run`, the Docker image and the benchmarks.

    gunicorn galaxysite.wsgi:application --config python:galaxysite.gunicorn

Flags given on the command line (--bind, --workers, ...) override these.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from galaxysite.memory import limit_malloc

# gunicorn's gthread worker, but a thread is spent on a connection only once its request
# head has arrived (galaxysite/gunicorn_worker.py).
worker_class = "galaxysite.gunicorn_worker.HeadBufferingThreadWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))


def _behind_proxy() -> bool:
    # The same switch as the Django settings' DJANGO_BEHIND_PROXY (read before Django starts).
    import environ

    env = environ.Env()
    env_file = Path(os.environ.get("DJANGO_ENV_FILE", Path(__file__).resolve().parent.parent / ".env"))
    if env_file.is_file():
        env.read_env(env_file)
    return env.bool("DJANGO_BEHIND_PROXY", default=False)


# gunicorn believes X-Forwarded-Proto and friends from 127.0.0.1 by default, so any local
# client could claim https. Only behind a configured proxy, and only from the proxy's
# addresses (FORWARDED_ALLOW_IPS, loopback unless set), are they trusted.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1") if _behind_proxy() else ""


# In the master, before it forks: every worker inherits the settings.
limit_malloc()


def post_worker_init(worker: Any) -> None:
    """Load the model in each worker before it takes requests.

    Runs after the fork, so each worker has its own interpreter (TFLite interpreters must
    not cross a fork), and after Django is set up. Without it a worker's first request
    waits for the model file to be read, verified and loaded. A model that cannot be
    loaded does not stop the worker: the app still serves its pages, the readiness probe
    reports the reason, and the next prediction tries again.
    """
    from classifier.core.exceptions import ModelUnavailableError
    from classifier.predictions.inference import get_classifier

    try:
        get_classifier()
    except ModelUnavailableError as exc:
        worker.log.warning("model not loaded at worker start: %s", exc.reason)


# --- Operations: metrics summed over the workers, JSON logs ---------------------------
# prometheus_client's multiprocess mode: each worker writes its samples to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics sums them, whichever worker answers the scrape. The
# variable must be set before a worker imports prometheus_client, so it is set here, in the
# master; without one given, each gunicorn run gets a private folder of its own.
# The mark survives a configuration reload (kill -HUP), which may run this module again.
_TEMPORARY_MARK = "GALAXY_METRICS_DIR_IS_TEMPORARY"
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="galaxy-metrics-")
    os.environ[_TEMPORARY_MARK] = "1"

# Imported here, in the master and after the variable is set, not in child_exit: that runs in
# gunicorn's SIGCHLD handler, where a second worker exiting mid-import re-entered the half-done
# import and brought the master down (seen in the reload test).
from prometheus_client import multiprocess  # noqa: E402


def on_starting(server: Any) -> None:
    """Start from an empty metrics folder: samples of an earlier run would be summed in."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's gauges (the model info) stop counting; its counters stay in the sums."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if os.environ.get(_TEMPORARY_MARK) == "1":
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# With LOG_FORMAT=json gunicorn's own lines are JSON too, and its access line goes: the app
# writes one "request" event per request instead, with the request id (classifier/ops/request_ids.py).
if os.environ.get("LOG_FORMAT", "plain") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "discard": {"class": "logging.NullHandler"},
        },
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["discard"], "propagate": False},
        },
    }
