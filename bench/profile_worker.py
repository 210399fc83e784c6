"""Sample a real gunicorn worker with py-spy under load and say where its time goes.

Starts the app (1 worker x 4 threads, PostgreSQL database galaxy_bench; the app's
DATABASE_CONN_MAX_AGE unless --conn-max-age is given), sends POST /api/predictions/
with one galaxy JPEG from 4 keep-alive clients while py-spy samples the worker (non-idle threads only), then
sorts every sample into the first matching stage below and prints the shares.

    python bench/profile_worker.py [--conn-max-age N] [--seconds 8] [--raw out.txt] [--section NAME]

py-spy needs ptrace rights over the worker (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import _common as common
import _server as server
from end_to_end import run_load

# First match wins, so the specific stages come before the general ones.
STAGES = [
    ("TFLite invoke", ("Interpreter.invoke",)),
    ("decode + preprocess", ("preprocess (classifier/core/preprocessing.py",)),
    ("header check", ("inspect_header",)),
    ("PostgreSQL connect", ("Connection.connect (psycopg", "connect (django/db/backends/base/base.py")),
    ("SQL (insert, commit, locks)", ("psycopg/",)),
    ("media file write", ("FileSystemStorage",)),
    ("sha256", ("hashlib", "_validate (classifier/predictions/services.py")),
    ("response serialisation", ("serializers.py", "renderers.py")),
    ("multipart parsing", ("multipartparser", "Request.FILES", "Request._load_data_and_files")),
    ("Django/DRF request handling", ("django/", "rest_framework/")),
    ("gunicorn", ("gunicorn/",)),
]


def summarise(raw: Path) -> list[tuple[str, int, float]]:
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        stage = next((name for name, needles in STAGES if any(n in stack for n in needles)), "other")
        counts[stage] += int(count)
    total = sum(counts.values()) or 1
    return [(stage, count, count / total) for stage, count in counts.most_common()]


def main() -> None:
    parser = common.arg_parser(__doc__, section="profile_worker")
    parser.add_argument("--conn-max-age", type=int, help="DATABASE_CONN_MAX_AGE (default: the app's)")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--raw", help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()

    model = common.resolve_model(args.model)
    paths = common.galaxy_jpegs(64, common.WORK_DIR / "images_256")
    bodies = [server.multipart([(path.name, path.read_bytes())]) for path in paths]
    raw = Path(args.raw) if args.raw else common.WORK_DIR / f"pyspy_worker_{args.section}.txt"
    info = common.machine()
    extra = {} if args.conn_max_age is None else {"DATABASE_CONN_MAX_AGE": str(args.conn_max_age)}
    with tempfile.TemporaryDirectory() as tmp, server.bench_database() as db_url:
        env = server.app_env(
            database_url=db_url,
            model=model,
            media=Path(tmp) / "media",
            extra=extra,
        )
        server.manage(env, "migrate", "--noinput")
        with server.Gunicorn(env, workers=1, threads=4) as app:
            common.wait_for_port(app.port, 60)
            run_load(app.port, bodies, 2, 10)
            [pid] = app.worker_pids()
            spy = common.py_spy(pid, raw, args.seconds, rate=500)
            load = run_load(app.port, bodies, 4, 120 * args.seconds, cpu_groups={"worker": app.worker_pids})
            spy.wait()
    rows = [[stage, count, f"{share:.0%}"] for stage, count, share in summarise(raw)]
    body = "\n".join(
        [
            common.machine_line(info),
            (
                f"1 gunicorn worker x 4 threads, 4 keep-alive clients, py-spy {args.seconds} s at 500 Hz "
                f"(non-idle threads). DATABASE_CONN_MAX_AGE="
                f"{args.conn_max_age if args.conn_max_age is not None else 'app default'}: "
                f"{load['requests_per_s']:.1f} req/s, p50 {load['latency_ms']['p50']:.1f} ms; "
                f"the worker used {load['cpu_ms_per_request']['worker']:.2f} ms of CPU per request. "
                f"{common.run_notes(args)}"
            ),
            "",
            common.table(["stage", "samples", "share"], rows),
        ]
    )
    common.write_section(args.section, body)
    common.say(body)


if __name__ == "__main__":
    main()
