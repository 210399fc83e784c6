"""Metrics and logs from a real gunicorn: counts summed over 2 workers, JSON lines with request ids."""

from __future__ import annotations

import json
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from classifier.tests.gunicorn_server import running_gunicorn, wait_for_log
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.slow
NATIVE_TFLITE_LINES = {"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."}


def _wait_until_both_workers_loaded_the_model(log: Path, timeout: float = 120, *, loads: int = 2) -> None:
    wait_for_log(log, "loaded model", timeout=timeout, count=loads)


@pytest.fixture
def gunicorn(tmp_path):
    """Starts gunicorn with 2 workers and the project's settings module; returns (base url, log, process)."""
    with ExitStack() as servers:

        def start(**env_overrides):
            server = servers.enter_context(
                running_gunicorn(
                    tmp_path, workers=2, threads=2, migrate=True, access_log=True, **env_overrides
                )
            )
            _wait_until_both_workers_loaded_the_model(server.log)
            return server.url, server.log, server.process

        yield start


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=30)


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    response = get(f"{base}/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_are_summed_over_both_workers(gunicorn, tmp_path):
    metrics_dir = tmp_path / "metrics"
    base, _log, _process = gunicorn(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    requests_sent = 40
    for _ in range(requests_sent):
        # A new connection each time, so gunicorn spreads them over its workers.
        assert get(f"{base}/api/health/live/", Connection="close").status_code == 200
    # Each worker keeps its own files; both served some of the requests.
    writers = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
    assert len(writers) == 2, sorted(metrics_dir.iterdir())
    key = (
        "django_http_responses_total_by_status_view_method_total",
        (("method", "GET"), ("status", "200"), ("view", "api:health-live")),
    )
    # Whichever worker answers the scrape, it reports the total of both.
    for _ in range(4):
        assert scrape(base)[key] == requests_sent
    model_info = [k for k in scrape(base) if k[0] == "galaxy_model_info"]
    assert len(model_info) == 1


def test_metrics_from_outside_loopback_need_the_token(gunicorn):
    base, _log, _process = gunicorn(DJANGO_BEHIND_PROXY="true", METRICS_TOKEN="scrape-token-0123456789")
    assert get(f"{base}/metrics").status_code == 404
    response = get(f"{base}/metrics", Authorization="Bearer scrape-token-0123456789")
    assert response.status_code == 200
    assert "galaxy_model_info" in response.text


def test_json_logs_carry_the_proxys_request_id_and_no_secrets(gunicorn):
    base, log, _process = gunicorn(LOG_FORMAT="json", DJANGO_BEHIND_PROXY="true")
    image = make_image_bytes(size=(64, 64), color=(1, 2, 3))
    response = requests.post(
        f"{base}/api/predictions/",
        files={"image": ("x.png", image[:40], "image/png")},  # a truncated PNG: refused
        headers={"X-Request-ID": "proxy-id-42", "Cookie": "sessionid=secret-session-not-to-be-logged"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.headers["X-Request-ID"] == "proxy-id-42"
    response = requests.get(
        f"{base}/api/predictions/",
        headers={"X-Request-ID": "proxy-id-43", "Authorization": "Token secret-token-not-to-be-logged"},
        timeout=30,
    )
    assert response.status_code == 401

    text = wait_for_log(log, '"status": 401')
    # Every line is JSON, but for the one line the TFLite runtime's C++ code prints itself.
    lines = [line for line in text.splitlines() if line.strip() and line not in NATIVE_TFLITE_LINES]
    records = [json.loads(line) for line in lines]
    refused = [record for record in records if record.get("request_id") == "proxy-id-42"]
    # Django's own warning about the 400 and the request event, both with the proxy's id.
    assert {record["logger"] for record in refused} >= {"django.request", "galaxysite.request"}
    event = next(record for record in refused if record["logger"] == "galaxysite.request")
    assert (event["method"], event["path"], event["status"]) == ("POST", "/api/predictions/", 400)
    assert any(record.get("request_id") == "proxy-id-43" for record in records)
    assert "secret-token" not in text
    assert "secret-session" not in text
    assert "IHDR" not in text  # nothing of the image's bytes
    # gunicorn's own lines are JSON too, and its access line is replaced by the event above.
    assert any(record["logger"] == "gunicorn.error" for record in records)
    assert not any(record["logger"] == "gunicorn.access" for record in records)


def test_without_a_trusted_proxy_the_clients_request_id_is_replaced(gunicorn):
    base, _log, _process = gunicorn(LOG_FORMAT="json")
    response = get(f"{base}/api/health/live/", **{"X-Request-ID": "forged-by-client"})
    assert response.headers["X-Request-ID"] != "forged-by-client"
    assert len(response.headers["X-Request-ID"]) == 32


def test_a_reload_keeps_the_sums_and_the_private_folder_goes_at_exit(gunicorn, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    base, log, process = gunicorn(TMPDIR=str(temporary))
    [metrics_dir] = temporary.glob("galaxy-metrics-*")
    for _ in range(10):
        get(f"{base}/api/health/live/", Connection="close")
    process.send_signal(signal.SIGHUP)  # a graceful reload: two new workers replace the old ones
    _wait_until_both_workers_loaded_the_model(log, loads=4)
    key = (
        "django_http_responses_total_by_status_view_method_total",
        (("method", "GET"), ("status", "200"), ("view", "api:health-live")),
    )
    # The old workers are still shutting down: a connection one of them took may be closed
    # unanswered, as during any reload.
    for attempt in range(5):
        try:
            sums = scrape(base)
            break
        except requests.ConnectionError:
            assert attempt < 4
            time.sleep(0.5)
    assert sums[key] == 10  # the old workers' counts stay in the sums
    process.terminate()
    process.wait(timeout=30)
    assert not metrics_dir.exists()
