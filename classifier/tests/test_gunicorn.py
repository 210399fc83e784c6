"""galaxysite/gunicorn.py: a real gunicorn loads the model in each worker before any request."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_gunicorn(tmp_path):
    started = []

    def start(**env_overrides):
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "MODEL_"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "galaxysite.settings",
                "DJANGO_ENV_FILE": str(tmp_path / "no.env"),
                "DJANGO_SECRET_KEY": "gunicorn-test-" + "k" * 40,
                "DJANGO_DEBUG": "false",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DJANGO_SECURE_HTTPS": "false",
                "DJANGO_LOG_LEVEL": "INFO",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                **env_overrides,
            }
        )
        log = tmp_path / f"gunicorn-{port}.log"
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "galaxysite.wsgi:application",
                "--config",
                "python:galaxysite.gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return port, log

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_log(log: Path, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not logged within {timeout} s:\n{log.read_text()}")


def test_each_worker_loads_the_model_before_its_first_request(start_gunicorn):
    port, log = start_gunicorn()
    # No request has been sent: only the post_worker_init hook can have loaded it.
    text = _wait_for_log(log, "loaded model")
    assert "galaxy10.tflite" in text
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/live/", timeout=10) as response:
        assert response.status == 200


def test_a_broken_model_does_not_stop_the_worker(start_gunicorn, tmp_path):
    port, log = start_gunicorn(MODEL_PATH=str(tmp_path / "missing.tflite"))
    _wait_for_log(log, "model not loaded at worker start")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/live/", timeout=10) as response:
        assert response.status == 200
