"""Real `celery worker` processes for the job tests, on the test database and media folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import connection

REDIS_URL = os.environ.get("JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
# RabbitMQ's default virtual host, which a fresh server has (a "jobs" one would have to be made
# with rabbitmqctl first); each test run declares queues of its own there.
RABBITMQ_URL = os.environ.get("JOBS_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
READY_TIMEOUT_S = 90


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def database_url() -> str:
    """The test database (not the configured one) as a URL a worker process can use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Worker:
    """One `celery -A galaxysite worker` with its own process group and log file."""

    def __init__(
        self, *, name: str, broker_url: str, log_dir: Path, concurrency: int = 1, **env: str
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "galaxysite.test_settings",
            "DATABASE_URL": database_url(),
            "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_BROKER_URL": broker_url,
            "JOB_CHUNK_SIZE": str(settings.JOB_CHUNK_SIZE),
            "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            **env,
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "galaxysite",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={name}@%h",
            "--loglevel=INFO",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> Worker:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.log[-3000:]}")
            return " ready." in self.log and self.log.count("loaded model") >= 1

        wait_for(ready, timeout=READY_TIMEOUT_S, what=f"worker {self.name} to be ready", interval=0.2)
        return self

    def pool_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill_everything(self) -> None:
        """kill -9 the whole worker: the main process and its pool, as a machine that dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
