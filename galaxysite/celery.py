"""The Celery app, as in Celery's "First steps with Django" guide.

    celery -A galaxysite worker

reads every CELERY_* setting (CELERY_BROKER_URL from the environment) through Django's
settings and finds classifier/tasks.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "galaxysite.settings")

app = Celery("galaxysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_queue_folders(sender: Celery, **kwargs: Any) -> None:
    # The filesystem transport (the embedded default) does not create its folders.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
