"""A production-like gunicorn + PostgreSQL stack on loopback for the HTTP benchmarks."""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _common as common

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DATABASE = "galaxy_bench"
PREDICT_PATH = "/api/predictions/"


def _postgres(dbname: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


@contextlib.contextmanager
def bench_database(name: str = BENCH_DATABASE) -> Iterator[str]:
    """A fresh PostgreSQL database for the run, dropped afterwards; yields its DATABASE_URL."""
    import psycopg

    def admin(statement: str) -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(statement)

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield _postgres(name)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(
    *, database_url: str, model: Path, media: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "MODEL_", "TFLITE_", "API_", "GUNICORN_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "galaxysite.settings",
            "DJANGO_ENV_FILE": str(media.parent / "no.env"),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_HTTPS": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DJANGO_MEDIA_ROOT": str(media),
            "DJANGO_STATIC_ROOT": str(media.parent),
            "DATABASE_URL": database_url,
            "MODEL_PATH": str(model),
            "MODEL_MANIFEST": str(common.manifest_for(model)),
            # As `make run` and the Docker image set it (see the Makefile).
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
            # The benchmark measures the stack, not the abuse limit.
            "API_ANON_THROTTLE_RATE": "100000000/minute",
        }
    )
    env.update(extra or {})
    return env


def manage(env: dict[str, str], *args: str, app_dir: Path | None = None) -> subprocess.CompletedProcess:
    app_dir = app_dir or common.APP_DIR
    return subprocess.run(  # noqa: S603
        [sys.executable, str(app_dir / "manage.py"), *args],
        env=env,
        cwd=app_dir,
        capture_output=True,
        text=True,
        check=True,
    )


@dataclass
class Gunicorn:
    env: dict[str, str]
    workers: int = 2
    threads: int = 4
    port: int = field(default_factory=common.free_port)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    # The checkout to serve (default: BENCH_APP_DIR or this one).
    app_dir: Path = field(default_factory=lambda: common.APP_DIR)

    def start(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(gunicorn),
                "galaxysite.wsgi:application",
                # The app's own gunicorn settings, when the checkout under test has them.
                *(
                    ["--config", "python:galaxysite.gunicorn"]
                    if (self.app_dir / "galaxysite" / "gunicorn.py").exists()
                    else []
                ),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--log-level",
                "warning",
            ],
            env=self.env,
            cwd=self.app_dir,
        )

    def worker_pids(self) -> list[int]:
        assert self.process is not None  # noqa: S101
        return common.child_pids(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def multipart(files: Sequence[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="image"; filename="{name}"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Client:
    """One keep-alive HTTP connection, as a browser or script would hold."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        try:
            self.connection.request("POST", PREDICT_PATH, body=body, headers=headers)
            response = self.connection.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            raise
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


class RawClient:
    """One keep-alive connection that sends pre-encoded requests and reads only what it must.

    On a 2-core machine the load generator shares the CPU with the server it measures;
    http.client's header parsing and per-call objects cost about as much CPU as a small
    web request. This client writes the whole request in one call and parses just the
    status line and Content-Length, so more of the machine is left to the server.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        return sock

    @staticmethod
    def encode(body: bytes, content_type: str, forwarded_for: str | None = None) -> bytes:
        # forwarded_for: the client address a trusted proxy would report (DJANGO_BEHIND_PROXY).
        forwarded = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
        head = (
            f"POST {PREDICT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
            f"{forwarded}Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body

    def send(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._connect()
        try:
            self.sock.sendall(request)
            return self._read_response()
        except OSError:
            self.close()
            raise

    def _read_response(self) -> tuple[int, bytes]:
        assert self.sock is not None  # noqa: S101
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(self.buffer) < length:
            self._receive()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if close:
            self.close()
        return status, body

    def _receive(self) -> None:
        assert self.sock is not None  # noqa: S101
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
