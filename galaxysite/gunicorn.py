"""gunicorn settings shared by `make run`, the Docker image and the benchmarks.

    gunicorn galaxysite.wsgi:application --config python:galaxysite.gunicorn

Flags given on the command line (--bind, --workers, ...) override these.
"""

from __future__ import annotations

import os
from typing import Any

worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))


def post_worker_init(worker: Any) -> None:
    """Load the model in each worker before it takes requests.

    Runs after the fork, so each worker has its own interpreter (TFLite interpreters must
    not cross a fork), and after Django is set up. Without it a worker's first request
    waits for the model file to be read, verified and loaded. A model that cannot be
    loaded does not stop the worker: the app still serves its pages, the readiness probe
    reports the reason, and the next prediction tries again.
    """
    from classifier.exceptions import ModelUnavailableError
    from classifier.inference import get_classifier

    try:
        get_classifier()
    except ModelUnavailableError as exc:
        worker.log.warning("model not loaded at worker start: %s", exc.reason)
