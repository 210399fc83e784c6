"""What the operations layer costs per request: request id, Prometheus middleware, DB wrappers.

    .venv/bin/python bench/ops_overhead.py [--requests 300] [--rounds 3]

In-process (Django's test client, a throwaway SQLite database, the shipped model), the same
requests are timed with the settings as shipped ("ops") and with the request-id and
Prometheus middleware and django-prometheus's database wrappers taken out ("baseline").
The two run alternately in fresh processes, several rounds, and the medians are compared.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
OPS_MIDDLEWARE = {
    "classifier.ops.request_ids.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
}


def configure(variant: str, database: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    import django
    from django.conf import settings

    from galaxysite import test_settings as shipped

    values = {name: getattr(shipped, name) for name in dir(shipped) if name.isupper()}
    # Hundreds of anonymous requests a minute: the anonymous rate limit would answer 429.
    values["REST_FRAMEWORK"] = {**values["REST_FRAMEWORK"], "DEFAULT_THROTTLE_CLASSES": []}
    values["MEDIA_ROOT"] = Path(database).parent / "media"
    if variant == "baseline":
        values["MIDDLEWARE"] = [m for m in values["MIDDLEWARE"] if m not in OPS_MIDDLEWARE]
        values["DATABASES"]["default"]["ENGINE"] = "django.db.backends.sqlite3"
    settings.configure(**values)
    django.setup()


def measure(variant: str, requests: int) -> dict[str, float]:
    database = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    configure(variant, str(database))
    import io

    from django.core.management import call_command
    from django.test import Client
    from PIL import Image

    call_command("migrate", verbosity=0)
    client = Client()
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (90, 60, 30)).save(buffer, format="JPEG")
    image = buffer.getvalue()

    def post() -> None:
        upload = io.BytesIO(image)
        upload.name = "g.jpg"
        status = client.post("/api/predictions/", {"image": upload}).status_code
        if status != 201:
            raise RuntimeError(f"POST answered {status}")

    def live() -> None:
        status = client.get("/api/health/live").status_code
        if status != 200:
            raise RuntimeError(f"GET answered {status}")

    results = {}
    for name, call in (("GET /api/health/live", live), ("POST /api/predictions/ (1 image)", post)):
        for _ in range(20):
            call()
        started = time.perf_counter()
        for _ in range(requests):
            call()
        results[name] = (time.perf_counter() - started) * 1000 / requests
        # Python function calls per request: the same in every run, whatever the machine's load.
        profile = cProfile.Profile()
        for _ in range(20):
            profile.runcall(call)
        results[f"{name}, function calls"] = pstats.Stats(profile).total_calls / 20
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", choices=["ops", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args.variant, args.requests)))  # noqa: T201
        return
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "ops": []}
    for _ in range(args.rounds):
        for variant in ("baseline", "ops"):
            output = subprocess.run(  # noqa: S603 - this script, with our own arguments
                [sys.executable, __file__, "--variant", variant, "--requests", str(args.requests)],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs[variant].append(json.loads(output.strip().splitlines()[-1]))
    machine = (
        f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"machine: {machine}; {args.rounds} rounds x {args.requests} requests, medians")  # noqa: T201
    for name in runs["ops"][0]:
        base = statistics.median(run[name] for run in runs["baseline"])
        ops = statistics.median(run[name] for run in runs["ops"])
        unit = "" if name.endswith("function calls") else " ms"
        change = f"{ops - base:+.3f}{unit} ({ops / base:.3f}x)"
        print(f"{name}: baseline {base:.3f}{unit}, ops {ops:.3f}{unit}, {change}")  # noqa: T201


if __name__ == "__main__":
    main()
