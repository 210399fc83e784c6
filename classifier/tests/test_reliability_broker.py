"""A broker that accepts connections and never answers (issue 21, item 6).

A real gunicorn with the production settings module is pointed at a listening socket that
accepts every connection and never sends a byte, as a hung Redis or RabbitMQ does. Job
submissions must get a 503 after a bounded wait (CELERY_BROKER_TIMEOUT) naming no broker
host or port, the job must end "failed" instead of staying "queued" with nothing queued, and
the liveness probe must keep answering while the submissions wait. A relay to the real Redis
and RabbitMQ is cut (a restart: the publish's retry gets through) and frozen (a hang in the
middle of a kept connection: 503 as well). The default broker settings are checked against
the 5-minute redelivery target, and a chunk is published only once its members are committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests
from kombu import Connection

from classifier.tests.gunicorn_server import ROOT, free_port, running_gunicorn, wait_until_live
from classifier.tests.jobs_support import distinct_images, make_zip
from classifier.tests.workers import RABBITMQ_URL, REDIS_URL, reachable

pytestmark = pytest.mark.slow

THREADS = 4
# Far above what a bounded publish may take (3 x CELERY_BROKER_TIMEOUT + 0.5 s = 6.5 s): a
# loaded machine does not fail the test, an unbounded wait (minutes before) does.
CLIENT_TIMEOUT_S = 45


@contextmanager
def silent_broker() -> Iterator[int]:
    """A port on which every TCP connection is accepted, then never answered."""
    with _listening() as server:
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    held.append(server.accept()[0])

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield server.getsockname()[1]
        finally:
            stop.set()
            thread.join(timeout=5)
            for connection in held:
                connection.close()


@contextmanager
def _listening() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    try:
        yield server
    finally:
        server.close()


class BrokerProxy:
    """A TCP relay to a real broker. Frozen, it goes silent on every connection: what it is
    sent is swallowed and nothing comes back, as from a broker that hangs mid-session.
    drop() cuts every connection, as a broker restart does."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = threading.Event()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if not self.frozen.is_set():
                with contextlib.suppress(OSError):
                    sink.sendall(data)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client = server.accept()[0]
            except TimeoutError:
                continue
            self._sockets.append(client)
            if self.frozen.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            self._sockets.append(upstream)
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    def drop(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @contextmanager
    def running(self) -> Iterator[int]:
        with _listening() as server:
            self._start(self._accept, server)
            try:
                yield server.getsockname()[1]
            finally:
                self._stop.set()
                for thread in self._threads:
                    thread.join(timeout=5)
                for sock in self._sockets:
                    sock.close()


def _api_token(server) -> str:
    code = (
        "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
        "user = get_user_model().objects.create_user('submitter', password='x-Long-enough-1'); "
        "print(Token.objects.create(user=user).key)"
    )
    env = {k: v for k, v in server.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]


def _submit(server, token: str, index: int) -> tuple[int, str, dict[str, str]]:
    archive = make_zip([(f"g{index}.png", distinct_images(index + 1)[index])])
    response = requests.post(
        f"{server.url}/api/jobs/",
        files={"archive": ("survey.zip", archive, "application/zip")},
        headers={"Authorization": f"Token {token}"},
        timeout=CLIENT_TIMEOUT_S,
    )
    return response.status_code, response.text, dict(response.headers)


def _jobs(server, token: str) -> list[dict]:
    listing = requests.get(f"{server.url}/api/jobs/", headers={"Authorization": f"Token {token}"}, timeout=30)
    return sorted(listing.json()["results"], key=lambda job: job["id"])


def _assert_503(answer: tuple[int, str, dict[str, str]], port: int) -> None:
    """A 503 the client may retry, naming no broker."""
    status, body, headers = answer
    assert status == 503, body
    assert json.loads(body)["detail"] == "the job queue is unavailable"
    assert headers["Retry-After"] == "30"
    assert str(port) not in body
    assert "127.0.0.1" not in body


def _assert_failed(job: dict, port: int) -> None:
    """Ended with a reason naming no broker: no job stays "queued" with nothing queued for it."""
    assert job["status"] == "failed"
    assert job["error"].startswith("the job queue is unavailable")
    assert str(port) not in job["error"]
    assert "127.0.0.1" not in job["error"]


def _broker_url(scheme: str, port: int) -> str:
    return f"redis://127.0.0.1:{port}/0" if scheme == "redis" else f"amqp://guest:guest@127.0.0.1:{port}//"


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_silent_broker_gives_a_quick_503_a_failed_job_and_live_health(tmp_path, scheme):
    with (
        silent_broker() as port,
        running_gunicorn(
            tmp_path, migrate=True, threads=THREADS, CELERY_BROKER_URL=_broker_url(scheme, port)
        ) as server,
    ):
        wait_until_live(server)
        token = _api_token(server)
        with ThreadPoolExecutor(THREADS) as pool:
            # As many submissions as the server has threads: every thread waits on the broker.
            submissions = [pool.submit(_submit, server, token, index) for index in range(THREADS)]
            time.sleep(0.5)
            # Answered as soon as a thread is free again, not after the broker's TCP timeout.
            live = urllib.request.urlopen(  # noqa: S310 - a local test server
                f"{server.url}/api/health/live/", timeout=CLIENT_TIMEOUT_S
            )
            assert live.status == 200
            answers = [submission.result() for submission in submissions]
        jobs = _jobs(server, token)
        assert len(jobs) == THREADS
        for answer in answers:
            _assert_503(answer, port)
        for job in jobs:
            _assert_failed(job, port)
        # The broker's own words, with its address, are kept for the operator.
        log = server.log.read_text()
        assert f"could not queue chunk 0-64 of job 1 on {scheme}://" in log
        assert f"127.0.0.1:{port}" in log


def test_a_refused_connection_names_no_broker_to_the_client(tmp_path):
    port = free_port()  # nothing listens there: Redis's own message names host and port
    with running_gunicorn(tmp_path, migrate=True, CELERY_BROKER_URL=_broker_url("redis", port)) as server:
        wait_until_live(server)
        token = _api_token(server)
        answer = _submit(server, token, 0)
        _assert_503(answer, port)
        [job] = _jobs(server, token)
        _assert_failed(job, port)


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_broker_restart_costs_no_job_and_a_hang_mid_session_a_quick_503(tmp_path, scheme):
    real_url = REDIS_URL if scheme == "redis" else RABBITMQ_URL
    if not reachable(real_url):
        pytest.skip(f"{scheme} is not reachable at {real_url}")
    real_port = urlsplit(real_url).port
    proxy = BrokerProxy(real_port)
    queue = f"jobs-test-{uuid.uuid4().hex[:12]}"
    try:
        with (
            proxy.running() as port,
            running_gunicorn(
                tmp_path,
                migrate=True,
                threads=1,
                CELERY_BROKER_URL=real_url.replace(f":{real_port}/", f":{port}/"),
                CELERY_TASK_DEFAULT_QUEUE=queue,
            ) as server,
        ):
            wait_until_live(server)
            token = _api_token(server)
            # The broker answers: the chunk is queued, on a connection the process keeps.
            assert _submit(server, token, 0)[0] == 202
            # Restarted: the kept connection is dead, and the publish's one retry reconnects.
            proxy.drop()
            assert _submit(server, token, 1)[0] == 202
            # Hung mid-session: the kept connection never answers again, nor do new ones.
            proxy.frozen.set()
            answer = _submit(server, token, 2)
            _assert_503(answer, port)
            *queued, refused = _jobs(server, token)
            assert [job["status"] for job in queued] == ["queued", "queued"]
            _assert_failed(refused, port)
    finally:
        with Connection(real_url) as conn:
            conn.default_channel.queue_delete(queue)


def _broker_settings(url: str) -> dict:
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'timeout': s.CELERY_BROKER_CONNECTION_TIMEOUT, "
        "'policy': s.CELERY_TASK_PUBLISH_RETRY_POLICY, 'chunk': s.JOB_CHUNK_SIZE, "
        "'retry_delay': s.JOB_RETRY_DELAY_MAX_S, 'member': s.JOB_MEMBER_SECONDS}))"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "JOB_"))},
        "DJANGO_SETTINGS_MODULE": "galaxysite.settings",
        "DJANGO_SECRET_KEY": "broker-settings-test-" + "k" * 40,
        "DJANGO_ENV_FILE": "/nonexistent/.env",
        "CELERY_BROKER_URL": url,
    }
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_default_redis_settings_bring_a_lost_chunk_back_within_five_minutes():
    conf = _broker_settings("redis://127.0.0.1:6379/0")
    options = conf["options"]
    timeout = options["visibility_timeout"]
    # Longer than a live worker may hold a chunk: a retry's countdown, then the chunk at 1 s
    # a member (the slowest accepted image takes about 0.05 s here).
    chunk_budget = conf["member"] * conf["chunk"]
    assert conf["member"] >= 1
    assert timeout >= conf["retry_delay"] + chunk_budget
    # Found by the next restore scan of any live worker, even when a killed worker held the
    # scan's lock, then run within its budget: all within 5 minutes of the kill.
    worst_case = timeout + options["unacked_restore_interval"] + options["unacked_mutex_expire"]
    assert worst_case + chunk_budget < 300
    assert options["unacked_restore_throttle"] == 1
    # Every Redis command of a publish is bounded in time.
    assert options["socket_timeout"] == options["socket_connect_timeout"] == conf["timeout"]


def test_default_rabbitmq_settings_confirm_and_bound_every_publish():
    conf = _broker_settings("amqp://guest:guest@127.0.0.1:5672//")
    assert conf["options"] == {
        "confirm_publish": True,
        "read_timeout": conf["timeout"],
        "write_timeout": conf["timeout"],
    }
    # A publish gives up within about 3 x the timeout (the call, one reconnection, closing the
    # dead connection) and the pause before the one retry.
    assert conf["policy"]["max_retries"] == 1
    assert 3 * conf["timeout"] + conf["policy"]["interval_max"] <= 7


@pytest.mark.django_db(transaction=True)
def test_a_chunk_is_published_only_once_its_members_are_committed(user, settings):
    # In the in-process memory broker. A worker that took a chunk before its member rows were
    # committed would find none pending, and the job would never end.
    from django.db import transaction

    from classifier.jobs import services as job_services
    from classifier.jobs.submissions import submission_from_uploads
    from classifier.tests.jobs_support import zip_upload
    from galaxysite.celery import app as celery_app

    settings.CELERY_TASK_DEFAULT_QUEUE = queue = f"jobs-test-{uuid.uuid4().hex[:12]}"
    settings.JOB_CHUNK_SIZE = 2
    archive = make_zip([(f"g{i}.png", data) for i, data in enumerate(distinct_images(5))])
    submission = submission_from_uploads(archive=zip_upload(archive))

    def queued() -> int:
        with celery_app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue, passive=True).message_count

    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_declare(queue)
    with transaction.atomic():
        job_services.job_create(name=submission.name, members=submission.members, user=user)
        assert queued() == 0
    assert queued() == 3
