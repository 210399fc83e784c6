"""CPU of one single-image upload in a real gunicorn worker, against a plain decode + model program.

For each checkout under test (this working tree, and BENCH_APP_DIR when set: e.g. a
`git worktree add /tmp/old <commit>` of an older version, with its own model) and each
database (SQLite, and PostgreSQL in a fresh database on BENCH_POSTGRES_URL), in the same
pass, interleaved, `--repeats` times:

1. start gunicorn as `make run` does (galaxysite.gunicorn: 2 workers x 4 threads, DEBUG off,
   the anonymous throttle raised so it never answers 429 but still counts every request);
2. send `--uploads` one-image POST /api/predictions/ (real 256x256 galaxy JPEGs) from 4
   keep-alive clients, reading from /proc the CPU (utime + stime) of the gunicorn workers and
   of the PostgreSQL backends connected to the bench database (pg_stat_activity);
3. run the plain program (bench/_plain_program.py: Pillow decode, centre crop, bilinear
   resize, normalise, one interpreter call; nothing from the app) on the same images with the
   same model, in its own process, and read its CPU per image;
4. run the app's own classification path (bench/_app_path.py: the serving core's prepare +
   classify_prepared, no Django, from as many threads as a worker has) on the same images;
   with the floor (an empty request through the same workers) it is the least an upload can
   cost a worker before its own web work: the bound column, as a ratio to the plain program;
5. count the SQL statements of one upload through the same stack (bench/_sql_count.py:
   Django's test client + CaptureQueriesContext, same settings and database).

The ratio worker CPU per upload / plain program CPU per image is taken within one
measurement, so a busy machine slows both sides alike. With `--profile`, py-spy then
samples every worker of this tree on PostgreSQL under the same load, and bench/stages.py
attributes the samples to the stages of an upload (table in ms of worker CPU per upload).

    python bench/upload_cpu.py [--uploads 600] [--repeats 2] [--profile] [--databases sqlite,postgres]
    BENCH_APP_DIR=/tmp/old python bench/upload_cpu.py     # also the old checkout, same pass
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import _common as common
import _server as server
import stages
from end_to_end import run_load

BENCH = Path(__file__).resolve().parent
CLIENTS = 4
WARM_UP_ROUNDS = 8
FLOOR_REQUEST = b"GET /api/health/live/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"


@dataclass
class Subject:
    label: str
    app_dir: Path

    @property
    def model(self) -> Path:
        return self.app_dir / "ml" / "models" / "galaxy10.tflite"


def backend_pids(database: str) -> list[int]:
    """PostgreSQL backends connected to ``database`` (the app's, not other users' of the server)."""
    import psycopg

    with psycopg.connect(server.POSTGRES_ADMIN_URL, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        ).fetchall()
    return [row[0] for row in rows]


def run_program(script: str, *args: object, cwd: Path | None = None) -> dict:
    """A bench program's JSON answer, run in its own process (its CPU is its own), one thread."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(BENCH / script), *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=cwd,
    )
    return json.loads(result.stdout)


def plain_program(subject: Subject, images: Path, count: int, repeats: int) -> dict:
    return run_program(
        "_plain_program.py", subject.model, common.manifest_for(subject.model), images, count, repeats
    )


def app_path(subject: Subject, images: Path, count: int, repeats: int) -> dict:
    return run_program(
        "_app_path.py",
        subject.app_dir,
        subject.model,
        common.manifest_for(subject.model),
        images,
        count,
        repeats,
        server.Gunicorn.threads,
        cwd=subject.app_dir,
    )


def sql_count(subject: Subject, env: dict[str, str], images: Path, uploads: int) -> dict:
    env = {**env, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver"}
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(BENCH / "_sql_count.py"), str(subject.app_dir), str(images), str(uploads)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=subject.app_dir,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    subject: Subject,
    database: str,
    bodies: list[tuple[bytes, str]],
    images: Path,
    args: object,
    *,
    profile_seconds: int = 0,
) -> dict:
    common.say(f"{subject.label} on {database}: {args.uploads} uploads")
    with tempfile.TemporaryDirectory(prefix="galaxy_upload_cpu_") as tmp:
        db_name = f"galaxy_bench_upload_{subject.label}"
        if database == "postgres":
            context = server.bench_database(db_name)
        else:
            context = _NullContext(f"sqlite:///{tmp}/db.sqlite3")
        with context as db_url:
            extra = {"CACHE_URL": args.cache_url} if args.cache_url and subject.label == "today" else {}
            encoded = None
            if args.anon_clients > 1:
                # Many anonymous clients behind one trusted proxy, each with its own throttle
                # history, instead of one client whose history holds every upload of the minute.
                extra["DJANGO_BEHIND_PROXY"] = "true"
                encoded = [
                    server.RawClient.encode(body, content_type, f"203.0.113.{index % args.anon_clients + 1}")
                    for index, (body, content_type) in enumerate(bodies)
                ]
            env = server.app_env(
                database_url=db_url, model=subject.model, media=Path(tmp) / "media", extra=extra
            )
            server.manage(env, "migrate", "--noinput", app_dir=subject.app_dir)
            with server.Gunicorn(env, app_dir=subject.app_dir) as app:
                common.wait_for_port(app.port, 90)
                # Every worker warm before counting: each run_load opens new connections, and
                # gunicorn's workers race to accept them, so several rounds reach every worker
                # (a worker's first request imports the URLconf, about 0.4 s of CPU).
                for _ in range(WARM_UP_ROUNDS):
                    run_load(app.port, bodies, CLIENTS, 2 * CLIENTS)
                groups = {"workers": app.worker_pids}
                if database == "postgres":
                    groups["PostgreSQL backends"] = lambda: backend_pids(db_name)
                spies = []
                if profile_seconds:
                    raws = [
                        common.WORK_DIR / f"pyspy_upload_{subject.label}_{pid}.txt"
                        for pid in app.worker_pids()
                    ]
                    spies = [
                        common.py_spy(pid, raw, profile_seconds, rate=250)
                        for pid, raw in zip(app.worker_pids(), raws, strict=True)
                    ]
                load = run_load(app.port, bodies, CLIENTS, args.uploads, cpu_groups=groups, encoded=encoded)
                for spy in spies:
                    spy.wait()
                # The stack's floor: the same clients and workers answering a request that does
                # nothing (no body, no throttle, no database, no model): gunicorn, the middleware,
                # DRF's dispatch and a JSON render. What an upload costs beyond decode + model
                # cannot go below it without changing the stack.
                floor = run_load(
                    app.port,
                    [],
                    CLIENTS,
                    args.uploads,
                    cpu_groups={"workers": app.worker_pids},
                    encoded=[FLOOR_REQUEST],
                    expect=200,
                )
            result = {
                "subject": subject.label,
                "database": database,
                "ok": load["ok"],
                "failed": load["failed"],
                "failure_samples": load["failure_samples"],
                "requests_per_s": load["requests_per_s"],
                "p50_ms": load["latency_ms"].get("p50"),
                "cpu_ms_per_upload": load["cpu_ms_per_request"],
                "floor_cpu_ms_per_request": floor["cpu_ms_per_request"]["workers"],
            }
            if profile_seconds:
                stages.use_rules(stages.hashing_rules(subject.app_dir))
                result["stages"] = dict(stages.attribute_files(raws))
            else:
                result["sql"] = sql_count(subject, env, images, 5)
    result["plain"] = plain_program(subject, images, 64, 2 if args.quick else 5)
    result["app_path"] = app_path(subject, images, 64, 2 if args.quick else 5)
    worker = result["cpu_ms_per_upload"]["workers"]
    plain = result["plain"]["cpu_ms_per_image"]
    result["ratio"] = worker / plain
    if "cpu_ms_per_image" in result["app_path"]:
        result["bound_ratio"] = (
            result["floor_cpu_ms_per_request"] + result["app_path"]["cpu_ms_per_image"]
        ) / plain
    common.say(
        f"  worker {worker:.2f} ms/upload, plain {result['plain']['cpu_ms_per_image']:.2f} ms/image, "
        f"ratio {result['ratio']:.2f}, floor {result['floor_cpu_ms_per_request']:.2f} ms/request, "
        f"bound {result.get('bound_ratio', float('nan')):.2f}, PostgreSQL "
        f"{result['cpu_ms_per_upload'].get('PostgreSQL backends', float('nan')):.2f} ms/upload, "
        f"{result['requests_per_s']:.0f} req/s, failed {result['failed']}"
    )
    return result


class _NullContext:
    def __init__(self, value: str) -> None:
        self.value = value

    def __enter__(self) -> str:
        return self.value

    def __exit__(self, *exc: object) -> None:
        return None


def statements_summary(statements: list[str]) -> str:
    """The statements of one upload, shortened to their verb and table."""
    short = []
    for sql in statements:
        words = sql.replace('"', "").split()
        verb = words[0].upper() if words else "?"
        table = next(
            (words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() in ("FROM", "INTO", "UPDATE")), ""
        )
        short.append(f"{verb} {table}".strip())
    return ", ".join(short)


def main() -> None:
    parser = common.arg_parser(__doc__, section="upload_cpu", quick="120 uploads, 1 repeat")
    parser.add_argument("--uploads", type=int, help="uploads per measurement (default 600)")
    parser.add_argument("--repeats", type=int, help="measurements per checkout and database (default 2)")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--profile", action="store_true", help="also sample this tree's workers with py-spy")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument(
        "--app-label", default="before", help="the BENCH_APP_DIR checkout's name in the table"
    )
    parser.add_argument(
        "--anon-clients",
        type=int,
        default=1,
        help="spread the uploads over this many anonymous client addresses (X-Forwarded-For behind a "
        "trusted proxy), each with its own throttle history; default 1: one client",
    )
    parser.add_argument(
        "--cache-url",
        help="CACHE_URL for this tree's app (e.g. redis://127.0.0.1:6379/9); default: the app's own",
    )
    args = parser.parse_args()
    args.uploads = args.uploads or (120 if args.quick else 600)
    common.WORK_DIR.mkdir(parents=True, exist_ok=True)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    databases = args.databases.split(",")

    info = common.machine()
    busy = common.other_busy_processes()
    subjects = [Subject("today", common.REPO)]
    if common.APP_DIR.resolve() != common.REPO.resolve():
        subjects.append(Subject(args.app_label, common.APP_DIR))
    folder = common.WORK_DIR / "images_256"
    paths = common.galaxy_jpegs(64, folder)
    bodies = [server.multipart([(path.name, path.read_bytes())]) for path in paths]

    runs: list[dict] = []
    failed: list[str] = []
    for _ in range(repeats):
        for database in databases:
            for subject in subjects:
                try:
                    runs.append(measure(subject, database, bodies, folder, args))
                except (subprocess.CalledProcessError, OSError, TimeoutError) as exc:
                    detail = getattr(exc, "stderr", "") or ""
                    common.say(f"  {subject.label} on {database} failed: {exc} {detail[-2000:]}")
                    failed.append(f"{subject.label} on {database}: {exc}")
    profile = None
    if args.profile:
        profile = measure(
            subjects[0],
            databases[-1],
            bodies,
            folder,
            args,
            profile_seconds=args.profile_seconds,
        )

    rows = []
    for run in runs:
        counts = run["sql"]["counts"]
        rows.append(
            [
                run["subject"],
                run["database"],
                f"{run['cpu_ms_per_upload']['workers']:.2f}",
                f"{run['plain']['cpu_ms_per_image']:.2f}",
                f"**{run['ratio']:.2f}x**",
                f"{run['floor_cpu_ms_per_request']:.2f}" if "floor_cpu_ms_per_request" in run else "-",
                f"{run['app_path']['cpu_ms_per_image']:.2f}" if "bound_ratio" in run else "-",
                f"{run['bound_ratio']:.2f}x" if "bound_ratio" in run else "-",
                (
                    f"{run['cpu_ms_per_upload']['PostgreSQL backends']:.2f}"
                    if "PostgreSQL backends" in run["cpu_ms_per_upload"]
                    else "-"
                ),
                f"{run['requests_per_s']:.0f}",
                f"{run['p50_ms']:.1f}",
                f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}",
                f"{run['ok']}/{run['failed']}",
            ]
        )
    statement_lines = []
    for subject in subjects:
        for database in databases:
            sample = next(
                (r for r in runs if r["subject"] == subject.label and r["database"] == database), None
            )
            if sample is None:
                continue
            statement_lines.append(
                f"- {subject.label}, {database}: {len(sample['sql']['statements'])} statements: "
                f"{statements_summary(sample['sql']['statements'])}"
            )
    labels = "; ".join(f"{s.label} = {s.app_dir}" for s in subjects)
    lines = [
        common.machine_line(info),
        (
            f"gunicorn as `make run` (galaxysite.gunicorn, 2 workers x 4 threads), {CLIENTS} keep-alive "
            "clients, "
            f"{args.uploads} one-image uploads per measurement, {repeats} measurement(s) per checkout and "
            f"database, interleaved. Checkouts: {labels}. "
            f"CACHE_URL of this tree: {args.cache_url or 'the app default'}. "
            f"Anonymous clients: {args.anon_clients}. {common.run_notes(args)}"
        ),
        *(["CPU contention at start: " + "; ".join(busy)] if busy else []),
        *(["Measurements that failed: " + "; ".join(failed)] if failed else []),
        "",
        common.table(
            [
                "checkout",
                "database",
                "worker CPU ms / upload",
                "plain program CPU ms / image",
                "ratio",
                "floor: worker CPU ms / GET /api/health/live/",
                f"app path: CPU ms / image, {server.Gunicorn.threads} threads",
                "bound: (floor + app path) / plain",
                "PostgreSQL backend CPU ms / upload",
                "req/s",
                "p50 ms",
                "SQL statements / upload",
                "201s / failed",
            ],
            rows,
        ),
        "",
        "SQL statements of one upload (test client, same settings and database):",
        "",
        *statement_lines,
    ]
    if profile:
        worker = profile["cpu_ms_per_upload"]["workers"]
        lines += [
            "",
            (
                f"Where the worker CPU goes (py-spy, {args.profile_seconds} s at 250 Hz on each worker of "
                f"'{profile['subject']}' on {profile['database']}, non-idle threads, attributed by "
                f"bench/stages.py; ms = share x the {worker:.2f} ms of worker CPU per upload measured "
                f"in that pass, whose ratio to the plain program was {profile['ratio']:.2f}x):"
            ),
            "",
            common.table(
                ["stage", "samples", "share", "ms / upload"],
                stages.rows(__import__("collections").Counter(profile["stages"]), worker),
            ),
        ]
    body = "\n".join(lines)
    common.write_json(args.section, {"machine": info, "busy": busy, "runs": runs, "profile": profile})
    common.write_section(args.section, body)
    common.say(body)


if __name__ == "__main__":
    main()
