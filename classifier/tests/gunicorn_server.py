"""A real gunicorn serving the project, for tests that need its workers, sockets and processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    port: int
    log: Path
    process: subprocess.Popen
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def wait_for_log(self, needle: str, timeout: float = 60, count: int = 1) -> str:
        return wait_for_log(self.log, needle, timeout=timeout, count=count)

    def manage(self, *args: str) -> None:
        # gunicorn creates the metrics folder; a command run beside it does not use one.
        env = {k: v for k, v in self.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        command = [sys.executable, "manage.py", *args]
        result = subprocess.run(command, cwd=ROOT, env=env, check=False, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]


def wait_for_log(log: Path, needle: str, *, timeout: float = 60, count: int = 1) -> str:
    """The log's text once ``needle`` appears ``count`` times in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if text.count(needle) >= count:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not logged {count} time(s) within {timeout} s:\n{log.read_text()}")


def server_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "DJANGO_",
                "DATABASE_",
                "MODEL_",
                "CACHE_",
                "API_",
                "GUNICORN_",
                "FORWARDED_",
                "PROMETHEUS_",
                "LOG_",
                "METRICS_",
            )
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "galaxysite.settings",
            "DJANGO_ENV_FILE": str(tmp_path / "no.env"),
            "DJANGO_SECRET_KEY": "gunicorn-test-" + "k" * 40,
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_HTTPS": "false",
            "DJANGO_LOG_LEVEL": "INFO",
            "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "MALLOC_ARENA_MAX": "2",
            **overrides,
        }
    )
    return env


@contextmanager
def running_gunicorn(
    tmp_path: Path,
    *,
    workers: int = 1,
    threads: int = 4,
    migrate: bool = False,
    access_log: bool = False,
    runtime_only: bool = False,
    **env_overrides: str,
) -> Iterator[Server]:
    """gunicorn with the project's settings module (galaxysite/gunicorn.py), as `make run` starts it.

    ``runtime_only``: its processes import only the packages of requirements.lock, as the
    Docker image's do (runtime_only/sitecustomize.py), for tests that measure a worker.
    """
    port = free_port()
    env = server_env(tmp_path, **env_overrides)
    if runtime_only:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent / "runtime_only"), str(ROOT)])
        env["RUNTIME_ONLY_LOCK"] = str(ROOT / "requirements.lock")
    log = tmp_path / f"gunicorn-{port}.log"
    server = Server(port=port, log=log, process=None, env=env)  # type: ignore[arg-type]
    if migrate:
        server.manage("migrate", "--noinput")
    server.process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "galaxysite.wsgi:application",
            "--config",
            "python:galaxysite.gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            *(["--access-logfile", "-"] if access_log else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def wait_until_live(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.url}/api/health/live/", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not answer within {timeout} s:\n{server.log.read_text()}")


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def post_image(url: str, name: str, data: bytes, *, headers: dict[str, str] | None = None) -> int:
    """POST one file as the multipart field ``image``; the HTTP status."""
    boundary = "----galaxytest"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(  # noqa: S310 - a local test server
        url,
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def post_images_at_once(url: str, files: Iterable[tuple[str, bytes]]) -> list[int]:
    """POST every (name, data) at the same time, each from a thread of its own, as an attack
    would; their HTTP statuses, in the order they came back."""
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda n=name, d=data: statuses.append(post_image(url, n, d)))
        for name, data in files
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses
