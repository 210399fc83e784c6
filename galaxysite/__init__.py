"""The Django project. Its Celery app (galaxysite/celery.py) is `celery_app`, as in Celery's guide.

The guide imports the app here eagerly; here it loads on first use instead, because importing
Celery lengthens the start-up of every manage.py command and web worker, and only job
submission and the workers need it. classifier/jobs/tasks.py binds its tasks to this app
explicitly, so no task can fall back to an unconfigured default app.
"""

from typing import Any

__all__ = ("celery_app",)


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from galaxysite.celery import app

        return app
    raise AttributeError(name)
