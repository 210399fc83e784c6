"""Profile POST /api/predictions/ in-process with pyinstrument, and count its SQL queries.

Runs the real app (production settings, DEBUG off) through django.test.Client, so there
is no network or gunicorn in the picture: what remains is Django, DRF, decode, inference,
hashing, file writes and the database. The database is DATABASE_URL when set (the bench
uses PostgreSQL on loopback), else a throwaway SQLite file.

    python bench/profile_api.py [--requests 200] [--files-per-request 1] [--html out.html]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

import _common as common


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--files-per-request", type=int, default=1)
    parser.add_argument("--model", help="TFLite model (default: the shipped one)")
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    args = parser.parse_args()

    model = common.resolve_model(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="galaxy_bench_profile_"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "galaxysite.settings",
            "DJANGO_ENV_FILE": str(tmp / "no.env"),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECURE_HTTPS": "false",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DJANGO_MEDIA_ROOT": str(tmp / "media"),
            "DJANGO_STATIC_ROOT": str(tmp),
            "MODEL_PATH": str(model),
            "MODEL_MANIFEST": str(common.manifest_for(model)),
            "API_ANON_THROTTLE_RATE": "100000000/minute",
        }
    )
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'db.sqlite3'}")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    call_command("migrate", verbosity=0)
    paths = common.galaxy_jpegs(max(64, args.files_per_request), common.WORK_DIR / "images_256")
    client = Client()

    def post(index: int) -> int:
        files = []
        for k in range(args.files_per_request):
            path = paths[(index * args.files_per_request + k) % len(paths)]
            handle = path.open("rb")
            files.append(handle)
        try:
            return client.post(
                "/api/predictions/", {"image": files}, HTTP_ACCEPT="application/json"
            ).status_code
        finally:
            for handle in files:
                handle.close()

    post(0)  # loads the model
    with CaptureQueriesContext(connection) as queries:
        status = post(1)
    common.say(f"status {status}; {len(queries.captured_queries)} SQL queries in one request:")
    for query in queries.captured_queries:
        common.say(f"  {query['sql'][:150]}")
    profiler = Profiler(interval=0.0005)
    t0 = time.perf_counter()
    with profiler:
        statuses = [post(i) for i in range(2, args.requests + 2)]
    elapsed = time.perf_counter() - t0
    common.say(
        f"{args.requests} requests of {args.files_per_request} file(s): "
        f"{elapsed / args.requests * 1000:.2f} ms "
        f"per request; statuses {sorted(set(statuses))}"
    )
    common.say(profiler.output_text(show_all=False, color=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html())
    connection.close()


if __name__ == "__main__":
    main()
