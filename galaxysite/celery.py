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
from django.core.signals import setting_changed
from django.dispatch import receiver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "galaxysite.settings")

app = Celery("galaxysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The tasks live with the feature they serve (classifier/jobs/tasks.py), not in <app>.tasks.
app.autodiscover_tasks(["classifier.jobs"])


@app.on_after_configure.connect
def _make_queue_folders(sender: Celery, **kwargs: Any) -> None:
    # The filesystem transport (the embedded default) does not create its folders.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@receiver(setting_changed)
def _reconfigure(*, setting: str, value: Any, **kwargs: Any) -> None:
    # override_settings(CELERY_BROKER_URL=...) in tests reaches the app, as it reaches Django.
    if not setting.startswith("CELERY_"):
        return
    app.conf[setting.removeprefix("CELERY_").lower()] = value
    # Connections already made keep their old broker: drop them so the next send reconnects.
    app._pool = None  # Celery has no public way to drop its connection pool.
    app.amqp._producer_pool = None
