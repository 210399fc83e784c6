"""Denial of service and malformed input: slow clients, forwarded headers, nested JSON, odd ids.

The slow-client and forwarded-header attacks run against a real gunicorn started with the
project's gunicorn settings, as `make run` serves the app.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest
from django.urls import reverse

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.gunicorn_server import running_gunicorn, wait_until_live
from classifier.tests.utils import make_image_bytes

HALF_HEAD = b"GET /api/health/live/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _live_within(url: str, timeout: float) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{url}/api/health/live/", timeout=timeout) as response:  # noqa: S310
        assert response.status == 200
    return time.monotonic() - started


@pytest.mark.slow
def test_a_hundred_half_sent_request_heads_do_not_stop_the_service(tmp_path):
    with running_gunicorn(tmp_path, workers=2, threads=4, GUNICORN_HEADER_TIMEOUT="3") as server:
        server.wait_for_log("loaded model", count=2)
        wait_until_live(server)
        slow = []
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(HALF_HEAD)
            slow.append(sock)
        time.sleep(0.5)
        # With gunicorn's own gthread worker this waited as long as the sockets stayed open.
        for _ in range(5):
            assert _live_within(server.url, timeout=5) < 5
        # And the half-sent heads are dropped once their time is up.
        time.sleep(4.5)
        for sock in slow:
            sock.settimeout(5)
            assert sock.recv(100) == b""
            sock.close()
        assert "request head took over" in server.log.read_text()


@pytest.mark.slow
def test_a_kept_alive_connection_cannot_hold_a_thread_with_its_next_half_head(tmp_path):
    with running_gunicorn(tmp_path, workers=1, threads=2, GUNICORN_HEADER_TIMEOUT="3") as server:
        server.wait_for_log("loaded model")
        wait_until_live(server)
        held = []
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /api/health/live/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.settimeout(10)
            assert b"200 OK" in sock.recv(4096)
            sock.sendall(HALF_HEAD)  # the next request on the same connection, half sent
            held.append(sock)
        time.sleep(0.5)
        assert _live_within(server.url, timeout=5) < 5
        for sock in held:
            sock.close()


@pytest.mark.slow
def test_a_request_whose_head_arrives_in_pieces_is_still_served(tmp_path):
    with running_gunicorn(tmp_path, workers=1, threads=2, GUNICORN_HEADER_TIMEOUT="5") as server:
        server.wait_for_log("loaded model")
        wait_until_live(server)
        sock = socket.create_connection(("127.0.0.1", server.port))
        for piece in (b"GET /api/health/li", b"ve/ HTTP/1.1\r\nHo", b"st: 127.0.0.1\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.3)
        sock.settimeout(10)
        assert b"200 OK" in sock.recv(4096)
        sock.close()


@pytest.mark.slow
@pytest.mark.parametrize(("behind_proxy", "scheme"), [("false", "http"), ("true", "https")])
def test_forwarded_proto_is_believed_only_behind_a_configured_proxy(tmp_path, behind_proxy, scheme):
    with running_gunicorn(
        tmp_path, workers=1, threads=2, migrate=True, DJANGO_BEHIND_PROXY=behind_proxy
    ) as server:
        server.wait_for_log("loaded model")
        wait_until_live(server)
        boundary = "b0undary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="g.png"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + make_image_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(  # noqa: S310 - the local test server
            f"{server.url}/api/predictions/",
            data=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                # A client on the same host claiming to have come over HTTPS.
                "X-Forwarded-Proto": "https",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            payload = json.loads(response.read())
    assert payload["predictions"][0]["image_url"].startswith(f"{scheme}://")


@pytest.mark.django_db
def test_deeply_nested_json_is_a_400_not_a_500(staff_client):
    response = staff_client.post(
        reverse("api:prediction-bulk-delete"), data="[" * 100_000, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


@pytest.mark.django_db
def test_deeply_nested_json_to_the_upload_endpoint_is_a_4xx(anonymous_client):
    response = anonymous_client.post(
        reverse("api:prediction-list"), data="[" * 100_000, content_type="application/json"
    )
    assert 400 <= response.status_code < 500
    assert Prediction.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ids",
    [
        "%C2%B2",  # superscript two: str.isdigit() says yes, int() says no
        "%D9%A3",  # Arabic-Indic three: int() would accept it
        "9223372036854775808",  # one past the largest id
        "99999999999999999999999999",
        "-1",
        "0",
        "1e3",
        "%00",
        ",,,",
    ],
)
def test_malformed_result_ids_are_a_4xx_or_an_empty_page(client, user, ids):
    client.force_login(user)
    response = client.get(f"{reverse('classifier:results')}?ids={ids}")
    assert response.status_code == 200
    assert response.context["cards"] == []


@pytest.mark.django_db
def test_valid_ids_still_show_their_results(client, user):
    client.force_login(user)
    prediction = PredictionFactory()
    response = client.get(f"{reverse('classifier:results')}?ids=%C2%B2,{prediction.pk},9223372036854775808")
    assert [card["prediction"].pk for card in response.context["cards"]] == [prediction.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("pk", ["9223372036854775808", "99999999999999999999999"])
def test_ids_beyond_the_id_range_are_404(client, user, staff_client, pk):
    client.force_login(user)
    assert client.get(f"/predictions/{pk}/").status_code == 404
    api = staff_client.get(f"/api/predictions/{pk}/")
    assert api.status_code == 404
    assert api["Content-Type"].startswith("application/json")
