"""The Celery app, as in Celery's "First steps with Django" guide.

    celery -A galaxysite worker

reads every CELERY_* setting (CELERY_BROKER_URL from the environment) through Django's
settings and finds classifier/jobs/tasks.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "galaxysite.settings")

# The embedded broker's URL as the settings default it: kombu's filesystem transport ignores
# the host, but a URL without one makes it log "No hostname was supplied" on every connection.
EMBEDDED_BROKER_URL = "filesystem://localhost/"

app = Celery("galaxysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The tasks live with the feature they serve (classifier/jobs/tasks.py), not in <app>.tasks.
app.autodiscover_tasks(["classifier.jobs"])


@app.on_after_configure.connect
def _complete_filesystem_url(sender: Celery, **kwargs: Any) -> None:
    # Celery reads CELERY_BROKER_URL from the environment before the settings, so a bare URL
    # given there is completed here, for the connections of both directions.
    if (sender.conf.broker_url or "").rstrip("/") == "filesystem:":
        sender.conf.broker_read_url = sender.conf.broker_write_url = EMBEDDED_BROKER_URL


@app.on_after_configure.connect
def _make_queue_folders(sender: Celery, **kwargs: Any) -> None:
    # The filesystem transport (the embedded default) does not create its folders.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
