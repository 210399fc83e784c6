"""A bounded load test: gunicorn + PostgreSQL on loopback, then an audit of what was stored.

Starts the app as `make run` would (gunicorn, 2 workers x 4 threads, DEBUG off) on a free
loopback port, with its own PostgreSQL database (galaxy_loadtest, created and dropped
here, never another) and its own media folder. Sends N single-image
POST /api/predictions/ requests (default 1,000) at concurrency 8, each a distinct real
256x256 galaxy JPEG (../shared/data/galaxy10_decals_dev, varied; generated galaxies when
the data is absent), authenticated with an API token so the anonymous throttle plays no
part. The --warmup requests (default 16) come first: audited, not timed. Then it
checks, against the database and the media folder:

    successes (201) == new rows == new image files, and no 5xx at all.

It prints p50/p95/p99 latency, requests/s and the machine, and exits 1 if a check fails.
It stops by itself: a fixed number of requests, a per-request timeout and an overall
deadline (--max-seconds); only 127.0.0.1 is contacted.

    python bench/load_test.py [--quick] [--requests 1000] [--concurrency 8] [--model PATH]

DATABASE_URL (or BENCH_POSTGRES_URL) names the PostgreSQL server to use; default
postgres://postgres@127.0.0.1:5432/postgres. The load generator runs on the same machine
as the server, so the figures include its CPU cost.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault(
    "BENCH_POSTGRES_URL", os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
)

# Imported after BENCH_POSTGRES_URL is set: _server reads it at import.
import _common as common
import _server as server

DATABASE_NAME = "galaxy_loadtest"
REQUEST_TIMEOUT_S = 120


class TokenClient:
    """One keep-alive connection per load thread, sending the API token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)

    def post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        try:
            self.connection.request(
                "POST", server.PREDICT_PATH, body=body, headers={**self.headers, "Content-Type": content_type}
            )
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = self._connect()
            raise


def create_token(env: dict[str, str]) -> str:
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        "user, _ = get_user_model().objects.get_or_create(username='loadtest')\n"
        "print(Token.objects.get_or_create(user=user)[0].key)\n"
    )
    return server.manage(env, "shell", "-c", script).stdout.strip().splitlines()[-1]


def count_rows(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as connection:
        return connection.execute("SELECT count(*) FROM classifier_prediction").fetchone()[0]


def count_files(media: Path) -> int:
    return sum(1 for path in media.rglob("*") if path.is_file())


def run(args: argparse.Namespace) -> int:  # noqa: PLR0915 - one linear script
    info = common.machine()
    common.say(common.machine_line(info))
    for line in common.other_busy_processes():
        common.say(f"Also running: {line}")
    model = common.resolve_model(args.model)
    common.say(f"Model: {common.model_label(model)}")

    work = Path(tempfile.mkdtemp(prefix="galaxy_loadtest_"))
    images = common.galaxy_jpegs(args.warmup + args.requests, common.WORK_DIR / "loadtest_images")
    payloads = [common.jpeg_bytes(path) for path in images]
    distinct = len({hashlib.sha256(data).hexdigest() for data in payloads})
    source = "real dev galaxies (varied)" if common.DEV_IMAGES.is_dir() else "generated galaxies"
    common.say(f"Images: {len(payloads)} JPEGs of 256x256 from {source}, {distinct} distinct")

    media = work / "media"
    media.mkdir()
    with server.bench_database(DATABASE_NAME) as database_url:
        env = server.app_env(
            database_url=database_url,
            model=model,
            media=media,
            extra={"GUNICORN_WORKERS": str(args.workers), "GUNICORN_THREADS": str(args.threads)},
        )
        server.manage(env, "migrate", "--noinput")
        token = create_token(env)
        rows_before, files_before = count_rows(database_url), count_files(media)

        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        latencies_ms: list[float] = []
        ok_payload_hashes: set[str] = set()
        lock = threading.Lock()
        deadline = time.monotonic() + args.max_seconds
        local = threading.local()

        with server.Gunicorn(env=env, workers=args.workers, threads=args.threads) as gunicorn:
            common.wait_for_port(gunicorn.port, timeout=60)

            def send(index: int, *, measured: bool = True) -> None:
                if time.monotonic() > deadline:
                    with lock:
                        errors["skipped: deadline passed"] += 1
                    return
                if not hasattr(local, "client"):
                    local.client = TokenClient(gunicorn.port, token)
                body, content_type = server.multipart([(images[index].name, payloads[index])])
                started = time.perf_counter()
                try:
                    status, _ = local.client.post(body, content_type)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    return
                elapsed = (time.perf_counter() - started) * 1000.0
                with lock:
                    statuses[status] += 1
                    if measured:
                        latencies_ms.append(elapsed)
                    if status == 201:
                        ok_payload_hashes.add(hashlib.sha256(payloads[index]).hexdigest())

            with ThreadPoolExecutor(args.concurrency) as pool:
                # Each worker loads its model on first use; the warm-up keeps that out of the figures.
                list(pool.map(lambda i: send(i, measured=False), range(args.warmup)))
                started = time.perf_counter()
                list(pool.map(send, range(args.warmup, len(payloads))))
                wall_s = time.perf_counter() - started

        new_rows = count_rows(database_url) - rows_before
        new_files = count_files(media) - files_before

    successes = statuses[201]
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    stats = common.summary_ms(latencies_ms) if latencies_ms else {}
    result = {
        "machine": info,
        "model": str(model),
        "requests": len(payloads),
        "warmup_requests": args.warmup,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "threads": args.threads,
        "statuses": dict(statuses),
        "transport_errors": dict(errors),
        "successes": successes,
        "new_rows": new_rows,
        "new_files": new_files,
        "distinct_successful_images": len(ok_payload_hashes),
        "wall_s": round(wall_s, 2),
        "requests_per_s": round(len(latencies_ms) / wall_s, 2),
        "latency_ms": {key: round(value, 1) for key, value in stats.items()},
    }
    common.say(f"Statuses: {dict(sorted(statuses.items()))}; transport errors: {dict(errors) or 'none'}")
    common.say(
        f"Latency ms: p50 {stats.get('p50', 0):.1f}, p95 {stats.get('p95', 0):.1f}, "
        f"p99 {stats.get('p99', 0):.1f}, mean {stats.get('mean', 0):.1f}"
    )
    common.say(
        f"Throughput: {result['requests_per_s']} requests/s over {wall_s:.1f} s "
        f"({len(latencies_ms)} measured requests after {args.warmup} warm-up requests)"
    )
    common.say(f"Audit: successes {successes}, new rows {new_rows}, new image files {new_files}")
    common.say(f"Result JSON: {common.write_json('load_test', result)}")

    failures = []
    if server_errors:
        failures.append(f"{server_errors} responses were 5xx")
    if errors:
        failures.append(f"{sum(errors.values())} requests got no response")
    if successes != len(payloads):
        failures.append(f"only {successes} of {len(payloads)} requests succeeded")
    if not successes == new_rows == len(ok_payload_hashes) == new_files:
        failures.append(
            f"successes {successes}, new rows {new_rows}, distinct successful images "
            f"{len(ok_payload_hashes)} and new files {new_files} differ"
        )
    for failure in failures:
        common.say(f"FAIL: {failure}")
    if not failures:
        common.say("PASS: every success is one row and one stored image; no 5xx")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 requests, for a smoke run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--model", help="a .tflite with its manifest beside it; default: the shipped model")
    parser.add_argument(
        "--warmup", type=int, default=16, help="requests sent first and left out of the latency figures"
    )
    parser.add_argument("--max-seconds", type=float, default=1200, help="stop sending after this long")
    args = parser.parse_args()
    if args.quick:
        args.requests = 100
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--requests and --concurrency must be at least 1, --warmup at least 0")
    common.say(json.dumps({"requests": args.requests, "concurrency": args.concurrency}))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
