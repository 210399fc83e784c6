"""Request bodies, GETs that cost work, and the account pages (issue 21, items 8, 10 and 16).

- Bodies: each endpoint takes the body its callers may send, judged from Content-Length before
  a byte is read: anonymous visitors send no job archive, and endpoints without files take no
  more than a form. A chunked body (no Content-Length) is refused before it is read. Proven
  with a real gunicorn: the 413 comes back while the client is still sending and nothing is
  spooled to the temporary folder.
- GETs: stored images, FITS previews and result downloads are rate-limited per user or client,
  in the shared cache.
- Accounts: password reset answers 404 unless outgoing mail is configured; reset and change
  are rate-limited.

Callers: anonymous (nobody logged in), user (a logged-in non-staff reader, by session or by API
token), staff (may also delete).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core import mail
from django.http.multipartparser import MultiPartParser
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.gunicorn_server import running_gunicorn, wait_until_live

FORM_LIMIT = 2_621_440  # DATA_UPLOAD_MAX_MEMORY_SIZE
BOUNDARY = "----galaxyboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def declared(client, path: str, size: int, **extra):
    """A POST that declares ``size`` bytes and sends one: judged by what it declares."""
    return client.generic("POST", path, b"x", content_type=MULTIPART, CONTENT_LENGTH=str(size), **extra)


def sent(client, path: str, size: int):
    """A POST of ``size`` bytes (a malformed form), for the requests that are read."""
    return client.generic("POST", path, b"x" * size, content_type=MULTIPART)


@pytest.fixture
def unparsed(monkeypatch):
    """Parsing a multipart body fails the test: the refusals must come before any reading."""

    def parse(self):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(MultiPartParser, "parse", parse)


@pytest.fixture
def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# --- request bodies ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_anonymous_400_mb_job_page_post_is_413_unread(client, unparsed):
    response = declared(client, reverse("classifier:job-new"), 400_000_000)
    assert response.status_code == 413
    assert "Nothing was saved" in response.content.decode()


@pytest.mark.django_db
def test_a_job_archive_is_for_users_only(
    anonymous_client, session_client, token_client, unparsed, monkeypatch
):
    url = reverse("api:job-list")
    refused = declared(anonymous_client, url, FORM_LIMIT + 1)
    assert refused.status_code == 413
    assert f"more than the limit of {FORM_LIMIT:,} bytes" in refused.json()["reason"]
    # A user's archive may be far larger: the same body reaches the view (which parses it).
    monkeypatch.undo()
    for client in (session_client, token_client):
        assert sent(client, url, FORM_LIMIT + 1).status_code == 400
    # Beyond the archive limit even a user is refused unread.
    assert declared(token_client, url, 3 * 1024**3).status_code == 413


@pytest.mark.django_db
def test_a_bad_token_counts_as_anonymous(unparsed):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert declared(client, reverse("api:job-list"), FORM_LIMIT + 1).status_code == 413


@pytest.mark.django_db
def test_prediction_uploads_take_a_full_batch_from_anyone_allowed(anonymous_client, token_client, settings):
    url = reverse("api:prediction-list")
    assert declared(anonymous_client, url, settings.MAX_REQUEST_BYTES + 1).status_code == 413
    assert sent(anonymous_client, url, FORM_LIMIT + 1).status_code == 400  # read, and malformed
    # With anonymous classification off, a visitor's upload is refused unread; a user's is not.
    settings.ALLOW_ANONYMOUS_PREDICT = False
    assert declared(anonymous_client, url, FORM_LIMIT + 1).status_code == 413
    assert sent(token_client, url, FORM_LIMIT + 1).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/accounts/login/", "/accounts/logout/", "/i18n/setlang/", "/nowhere/", "/api/predictions/bulk-delete/"],
)
def test_endpoints_without_files_take_no_more_than_a_form(client, staff, path):
    client.force_login(staff)
    assert sent(client, path, FORM_LIMIT).status_code != 413
    assert declared(client, path, FORM_LIMIT + 1).status_code == 413


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/predictions/", "/", "/jobs/new/", "/accounts/login/"])
def test_a_chunked_body_is_refused_before_it_is_read(client, unparsed, path):
    response = client.generic("POST", path, b"", content_type=MULTIPART, HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert "Content-Length" in response.content.decode()
    assert Prediction.objects.count() == 0


def _raw_post(port: int, path: str, headers: dict[str, str], body_chunks: Iterator[bytes]) -> tuple[int, int]:
    """Sends a request head, then body chunks until the server answers; (status, bytes sent)."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode())
        sent = 0
        sock.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(chunk)
            except BlockingIOError:
                break  # the server stopped reading: wait for its answer
            sent += len(chunk)
        sock.setblocking(True)
        while b"\r\n" not in answer:
            answer += sock.recv(65536)
    return int(answer.split(b" ", 2)[1]), sent


def _multipart_body(megabytes: int) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="archive"; filename="a.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    for _ in range(megabytes):
        yield b"\0" * 1_000_000


def _chunked(body: Iterator[bytes]) -> Iterator[bytes]:
    for part in body:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"


def _spooled(spool: Path) -> list[Path]:
    # Django spools uploads as NamedTemporaryFile(suffix=".upload..."), in TMPDIR here.
    return sorted(spool.rglob("*.upload*"))


@pytest.mark.slow
def test_gunicorn_refuses_huge_bodies_while_they_are_being_sent_and_spools_nothing(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    with running_gunicorn(tmp_path, workers=1, threads=4, migrate=True, TMPDIR=str(spool)) as server:
        server.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; from rest_framework.authtoken.models import Token;"
            "Token.objects.create(user=User.objects.create_user('reader', password='x' * 20), key='t' * 40)",
        )
        wait_until_live(server)
        # JSON answers: this server has no collected static files for the HTML page (tested above).
        big = {"Content-Type": MULTIPART, "Content-Length": str(400_000_000), "Accept": "application/json"}
        # The attack: 400 MB to the job page, anonymous. Answered 413 after at most a few MB sent.
        status, sent = _raw_post(server.port, "/jobs/new/", big, _multipart_body(400))
        assert status == 413
        assert sent < 50_000_000
        assert _spooled(spool) == []
        status, sent = _raw_post(server.port, "/api/predictions/", big, _multipart_body(400))
        assert status == 413
        assert sent < 50_000_000
        # Chunked, with no Content-Length: refused as soon as the head is read.
        chunked = {"Content-Type": MULTIPART, "Transfer-Encoding": "chunked", "Accept": "application/json"}
        status, sent = _raw_post(server.port, "/api/predictions/", chunked, _chunked(_multipart_body(400)))
        assert status == 411
        assert sent < 50_000_000
        assert _spooled(spool) == []

        # The check would see spooling: a user's large archive is read, and spooled as it comes.
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            sock.sendall(
                (
                    f"POST /api/jobs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {'t' * 40}\r\n"
                    f"Content-Type: {MULTIPART}\r\nContent-Length: 400000000\r\n\r\n"
                ).encode()
            )
            for part in _multipart_body(3):
                sock.sendall(part)
            for _ in range(200):
                if _spooled(spool):
                    break
                sock.sendall(b"\0" * 100_000)
            assert _spooled(spool) != []


# --- GETs that do work ------------------------------------------------------------------------


@pytest.fixture
def rates(settings):
    def set_rates(**scopes: str) -> None:
        rest = settings.REST_FRAMEWORK
        settings.REST_FRAMEWORK = {
            **rest,
            "DEFAULT_THROTTLE_RATES": {**rest["DEFAULT_THROTTLE_RATES"], **scopes},
        }

    return set_rates


@pytest.mark.django_db
def test_stored_images_are_rate_limited_per_user(rates, client, user, staff):
    rates(media="3/minute")
    prediction = PredictionFactory()
    url = prediction.image.url
    client.force_login(user)
    assert [client.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = client.get(url)
    assert int(refused["Retry-After"]) >= 1
    assert "Too many requests" in refused.content.decode()
    # Probing for files that do not exist counts too.
    assert client.get("/media/nothing-here.png").status_code == 429
    # Another user has a count of their own.
    client.force_login(staff)
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_anonymous_visitors_are_counted_by_address(rates, client):
    rates(media="2/minute")
    statuses = [client.get("/media/x.png", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(3)]
    assert statuses == [404, 404, 429]


@pytest.mark.django_db
def test_fits_previews_share_the_media_limit(rates, client, user):
    rates(media="2/minute")
    client.force_login(user)
    prediction = PredictionFactory()
    preview = reverse("classifier:prediction-preview", args=[prediction.pk])
    assert client.get(prediction.image.url).status_code == 200
    assert client.get(preview).status_code == 404  # not a FITS upload, but counted
    assert client.get(preview).status_code == 429


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["classifier:results-csv", "classifier:results-json", "classifier:history-csv"]
)
def test_result_downloads_are_rate_limited(rates, client, user, name):
    rates(downloads="2/minute")
    client.force_login(user)
    ids = ",".join(str(p.pk) for p in PredictionFactory.create_batch(3))
    # The history CSV exports the filtered log and refuses parameters it does not know, ids included.
    url = reverse(name) if name == "classifier:history-csv" else f"{reverse(name)}?ids={ids}"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.slow
def test_the_get_limit_is_shared_by_every_worker_process(tmp_path):
    with running_gunicorn(
        tmp_path, workers=2, threads=2, migrate=True, MEDIA_THROTTLE_RATE="5/minute"
    ) as server:
        server.wait_for_log("loaded model", count=2)
        wait_until_live(server)
        statuses = []
        for _ in range(12):
            # A new connection each time, so both workers answer some.
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                sock.sendall(b"GET /media/x.png HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answer = b""
                while b"\r\n" not in answer:
                    answer += sock.recv(4096)
            statuses.append(int(answer.split(b" ", 2)[1]))
    assert statuses == [404] * 5 + [429] * 7


# --- password reset and change ----------------------------------------------------------------

RESET_PAGES = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("backend", [None, "django.core.mail.backends.console.EmailBackend"])
def test_password_reset_is_off_unless_mail_is_configured(client, user, settings, backend):
    user.email = "reader@example.org"
    user.save()
    settings.EMAIL_URL = "" if backend is None else "consolemail://"
    if backend:
        settings.EMAIL_BACKEND = backend
    for page in RESET_PAGES:
        assert client.get(page).status_code == 404, page
    assert client.post(RESET_PAGES[0], {"email": user.email}).status_code == 404
    assert mail.outbox == []


@pytest.fixture
def mail_configured(settings, user):
    # The test run's locmem backend stands in for the SMTP server EMAIL_URL names.
    settings.EMAIL_URL = "smtp://mail.example.org:25"
    user.email = "reader@example.org"
    user.save()
    return user


@pytest.mark.django_db
def test_password_reset_with_mail_is_rate_limited_per_client(rates, client, mail_configured):
    rates(password_reset="3/hour")
    assert client.get(RESET_PAGES[0]).status_code == 200
    statuses = [client.post(RESET_PAGES[0], {"email": f"x{n}@example.org"}).status_code for n in range(2)]
    statuses.append(client.post(RESET_PAGES[0], {"email": mail_configured.email}).status_code)
    assert statuses == [302, 302, 302]
    assert len(mail.outbox) == 1
    refused = client.post(RESET_PAGES[0], {"email": mail_configured.email})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_password_reset_is_rate_limited_per_address_mailed(rates, client, mail_configured, settings):
    rates(password_reset="3/hour")
    settings.BEHIND_PROXY = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # Many clients, one victim: the address's own count stops the mail.
    statuses = [
        client.post(
            RESET_PAGES[0], {"email": "Reader@Example.org"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        ).status_code
        for n in range(5)
    ]
    assert statuses == [302, 302, 302, 429, 429]
    assert len(mail.outbox) == 3


@pytest.mark.django_db
def test_password_change_attempts_are_rate_limited_per_user(rates, client, user):
    rates(password_change="3/hour")
    client.force_login(user)
    url = reverse("password_change")
    wrong = {
        "old_password": "guess",
        "new_password1": "N3w-pass-phrase!",
        "new_password2": "N3w-pass-phrase!",
    }
    assert [client.post(url, wrong).status_code for _ in range(3)] == [200, 200, 200]
    right = {**wrong, "old_password": "reader-pass-123"}
    assert client.post(url, right).status_code == 429
    user.refresh_from_db()
    assert user.check_password("reader-pass-123")
    assert client.get(url).status_code == 200  # the form itself is not counted


@pytest.mark.django_db
def test_a_password_change_within_the_limit_still_works(client, user):
    client.force_login(user)
    right = {
        "old_password": "reader-pass-123",
        "new_password1": "N3w-pass-phrase!",
        "new_password2": "N3w-pass-phrase!",
    }
    assert client.post(reverse("password_change"), right).status_code == 302
    user.refresh_from_db()
    assert user.check_password("N3w-pass-phrase!")


# --- the API root's links and the schema ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_the_bulk_delete_link_read_as_a_prediction_id_gets_what_the_schema_documents(
    live_server, staff, method
):
    from schemathesis.specs.openapi.stateful.inference import LinkInferencer

    from classifier.tests.test_api_schemathesis import CHECKS, schema

    # schemathesis's stateful phase infers links from the URLs in the API root's body, and
    # this one matches the prediction detail's path template, with "bulk-delete" as its id.
    match = LinkInferencer.from_schema(schema).match("/api/predictions/bulk-delete/")
    assert match is not None
    assert match[0].path == "/api/predictions/{id}/"
    assert match[1] == {"id": "bulk-delete"}
    token = Token.objects.create(user=staff).key
    case = schema["/api/predictions/{id}/"][method].Case(path_parameters={"id": "bulk-delete"})
    response = case.call_and_validate(
        base_url=live_server.url, headers={"Authorization": f"Token {token}"}, checks=CHECKS
    )
    assert response.status_code == 404
    # The bulk delete itself is untouched.
    assert APIClient().post("/api/predictions/bulk-delete/", {"all": True}, format="json").status_code == 401
