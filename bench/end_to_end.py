"""POST /api/predictions/ through gunicorn + PostgreSQL on loopback, against the raw floor.

Starts the app as `make run` would (gunicorn, 2 workers x 4 threads by default, DEBUG off)
on a free port, with its own database (galaxy_bench, created and dropped here) and its own
media folder, and the anonymous throttle raised so it does not interfere. Sends real
256x256 galaxy JPEGs (../shared/data/galaxy10_decals_dev, varied so each file differs;
generated galaxies when the data is absent) at concurrency 1, 4 and 8 from keep-alive
clients, then batch requests of 16 images.

The floor is measured in this process on the same files first: decode + preprocess
(classifier.core.preprocessing.preprocess) + one interpreter call at 1 thread, no web stack.
Overhead ratio = end-to-end p50 at concurrency 1 / floor p50. The throughput reference
is what `workers` processes doing nothing but decode + inference could serve.

    python bench/end_to_end.py [--quick] [--model PATH] [--workers 2] [--threads 4]

The load generator runs on the same machine, so on a 2-core box it takes CPU from the
server; the figures include that cost.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import _common as common
import _server as server

BATCH_FILES = 16


def raw_floor(model: Path, images: list[bytes], repeats: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    from classifier.core.preprocessing import preprocess

    config = common.model_preprocessing(model)
    interpreter = Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    decode_ms, infer_ms, total_ms = [], [], []
    for _ in range(repeats):
        for data in images:
            t0 = time.perf_counter()
            tensor = preprocess(data, config)[None]
            t1 = time.perf_counter()
            interpreter.set_tensor(input_index, tensor)
            interpreter.invoke()
            interpreter.get_tensor(output_index)
            t2 = time.perf_counter()
            decode_ms.append((t1 - t0) * 1000)
            infer_ms.append((t2 - t1) * 1000)
            total_ms.append((t2 - t0) * 1000)
    return {
        "decode": common.summary_ms(decode_ms),
        "inference": common.summary_ms(infer_ms),
        "decode_plus_inference": common.summary_ms(total_ms),
    }


def commit_floor(database_url: str, rounds: int) -> dict:
    """One durable INSERT + COMMIT of a row the size of a prediction, on the same PostgreSQL:
    the least any request that records an audit row must wait for."""
    import psycopg

    timings = []
    with psycopg.connect(database_url) as connection:
        connection.execute("CREATE TABLE bench_commit_probe (id serial, payload text)")
        connection.commit()
        for _ in range(rounds):
            t0 = time.perf_counter()
            connection.execute("INSERT INTO bench_commit_probe (payload) VALUES (repeat('x', 400))")
            connection.commit()
            timings.append((time.perf_counter() - t0) * 1000)
        connection.execute("DROP TABLE bench_commit_probe")
        connection.commit()
    return common.summary_ms(timings)


def run_load(
    port: int,
    bodies: list[tuple[bytes, str]],
    concurrency: int,
    requests: int,
    *,
    client: str = "raw",
    cpu_groups: dict[str, Callable[[], list[int]]] | None = None,
    encoded: list[bytes] | None = None,
    expect: int = 201,
) -> dict:
    """``requests`` uploads of ``bodies`` from ``concurrency`` keep-alive clients; or, with
    ``encoded`` (whole raw requests), those requests sent as they are, answered ``expect``."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    if encoded is None:
        encoded = [server.RawClient.encode(body, content_type) for body, content_type in bodies]
    else:
        client = "raw"

    def worker(seed: int) -> None:
        connection = server.RawClient(port) if client == "raw" else server.Client(port)
        rng = random.Random(seed)  # noqa: S311
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            pick = rng.randrange(len(encoded))
            t0 = time.perf_counter()
            try:
                if isinstance(connection, server.RawClient):
                    status, payload = connection.send(encoded[pick])
                else:
                    status, payload = connection.post(*bodies[pick])
            except OSError as exc:
                status, payload = 0, str(exc).encode()
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                if status == expect:
                    latencies.append(elapsed)
                else:
                    failures.append(f"{status}: {payload[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    with common.CpuAccount(cpu_groups or {}) as account:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = account.wall
    return {
        "concurrency": concurrency,
        "ok": len(latencies),
        "failed": len(failures),
        "failure_samples": failures[:3],
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        "latency_ms": common.summary_ms(latencies) if latencies else {},
        "cpu_ms_per_request": account.per_item_ms(max(len(latencies), 1)),
    }


def main() -> None:  # noqa: PLR0915
    parser = common.arg_parser(__doc__, section="end_to_end", quick="few requests")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, help="requests per concurrency level")
    parser.add_argument(
        "--conn-max-age", type=int, help="DATABASE_CONN_MAX_AGE for the app (default: its own)"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "http.client"),
        default="raw",
        help="load generator connection: pre-encoded requests on a raw socket (default), or http.client",
    )
    args = parser.parse_args()

    info = common.machine()
    busy = common.other_busy_processes()
    model = common.resolve_model(args.model)
    requests = args.requests or (24 if args.quick else 300)
    paths = common.galaxy_jpegs(64, common.WORK_DIR / "images_256")
    images = [path.read_bytes() for path in paths]
    floor = raw_floor(model, images, repeats=1 if args.quick else 5)
    floor_p50 = floor["decode_plus_inference"]["p50"]
    floor_mean = floor["decode_plus_inference"]["mean"]
    single_bodies = [server.multipart([(path.name, data)]) for path, data in zip(paths, images, strict=True)]
    batch_bodies = [
        server.multipart(
            [(paths[(i + k) % len(paths)].name, images[(i + k) % len(paths)]) for k in range(BATCH_FILES)]
        )
        for i in range(0, len(paths), 4)
    ]

    extra = {}
    if args.conn_max_age is not None:
        extra["DATABASE_CONN_MAX_AGE"] = str(args.conn_max_age)
    results: dict = {"floor": floor, "levels": [], "machine": info, "busy": busy}
    with (
        tempfile.TemporaryDirectory(prefix="galaxy_bench_media_") as media_root,
        server.bench_database() as db_url,
    ):
        env = server.app_env(database_url=db_url, model=model, media=Path(media_root) / "media", extra=extra)
        server.manage(env, "migrate", "--noinput")
        results["commit"] = commit_floor(db_url, 20 if args.quick else 200)
        with server.Gunicorn(env, workers=args.workers, threads=args.threads) as app:
            common.wait_for_port(app.port, 60)
            # Load the model in every worker before timing (a cold start is bench/cold_start.py).
            run_load(app.port, single_bodies, concurrency=args.workers * 2, requests=args.workers * 8)
            groups = {
                "gunicorn workers": app.worker_pids,
                "PostgreSQL": lambda: common.pids_named("postgres"),
                "load generator": lambda: [os.getpid()],
            }
            for concurrency in (1, 4, 8):
                common.say(f"concurrency {concurrency}: {requests} requests")
                results["levels"].append(
                    run_load(
                        app.port, single_bodies, concurrency, requests, client=args.client, cpu_groups=groups
                    )
                )
            batch_requests = 4 if args.quick else 20
            common.say(f"batch of {BATCH_FILES}: {batch_requests} requests at concurrency 1")
            results["batch"] = run_load(app.port, batch_bodies, 1, batch_requests, client=args.client)
            workers = app.worker_pids()
            results["worker_rss_mb"] = [common.rss_mb(pid) for pid in workers]
            results["worker_peak_rss_mb"] = [common.peak_rss_mb(pid) for pid in workers]
            results["master_rss_mb"] = common.rss_mb(app.process.pid)

    level = {entry["concurrency"]: entry for entry in results["levels"]}
    raw_two_workers = args.workers * 1000.0 / floor_mean
    overhead = level[1]["latency_ms"]["p50"] / floor_p50
    share = level[8]["requests_per_s"] / raw_two_workers
    rows = [
        [
            entry["concurrency"],
            entry["ok"],
            entry["failed"],
            f"{entry['requests_per_s']:.1f}",
            f"{entry['latency_ms']['p50']:.1f}",
            f"{entry['latency_ms']['p95']:.1f}",
            f"{entry['latency_ms']['p99']:.1f}",
        ]
        for entry in results["levels"]
    ]
    cpu_names = list(results["levels"][0]["cpu_ms_per_request"])
    cpu_rows = [
        [entry["concurrency"], *(f"{entry['cpu_ms_per_request'][name]:.2f}" for name in cpu_names)]
        for entry in results["levels"]
    ]
    batch = results["batch"]
    failures = [sample for entry in [*results["levels"], batch] for sample in entry["failure_samples"]]
    body = "\n".join(
        [
            common.machine_line(info),
            (
                f"Model: {common.model_label(model)}. gunicorn {args.workers} workers x {args.threads} "
                f"threads, PostgreSQL on loopback, DATABASE_CONN_MAX_AGE="
                f"{args.conn_max_age if args.conn_max_age is not None else 'app default'}. "
                f"{requests} requests per level; load generator: {args.client} keep-alive connections, "
                f"one thread each. {common.run_notes(args)}"
            ),
            *(["CPU contention at start: " + "; ".join(busy)] if busy else []),
            "",
            (
                f"Raw floor (no web stack, 1 thread, {floor['decode']['n']} calls): decode + preprocess p50 "
                f"{floor['decode']['p50']:.2f} ms, inference p50 {floor['inference']['p50']:.2f} ms, "
                f"together p50 {floor_p50:.2f} ms (mean {floor_mean:.2f} ms). "
                f"One durable INSERT + COMMIT on the same PostgreSQL: p50 {results['commit']['p50']:.2f} ms, "
                f"p95 {results['commit']['p95']:.2f} ms."
            ),
            "",
            common.table(["concurrency", "201s", "failed", "req/s", "p50 ms", "p95 ms", "p99 ms"], rows),
            "",
            (
                f"Where the {info['cores']} cores went, in CPU ms per answered request (from /proc; "
                "'other' is the rest of the machine, 'idle' the unused core time):"
            ),
            "",
            common.table(["concurrency", *cpu_names], cpu_rows),
            "",
            (
                f"Batch of {BATCH_FILES} images per request (concurrency 1, {batch['ok']} requests): "
                f"p50 {batch['latency_ms'].get('p50', float('nan')):.1f} ms, "
                f"{batch['requests_per_s'] * BATCH_FILES:.1f} images/s."
            ),
            "",
            (
                f"RSS per worker after the run: {', '.join(f'{v:.0f}' for v in results['worker_rss_mb'])} MB "
                f"(peak {', '.join(f'{v:.0f}' for v in results['worker_peak_rss_mb'])} MB); "
                f"master {results['master_rss_mb']:.0f} MB."
            ),
            "",
            common.table(
                ["ratio (same run)", "value", "target"],
                [
                    [
                        "end-to-end p50 at concurrency 1 / raw decode + inference p50",
                        f"{overhead:.2f}x",
                        "<= 2",
                    ],
                    [
                        (
                            f"req/s at concurrency 8 / {args.workers} workers of raw decode + inference "
                            f"({raw_two_workers:.0f}/s)"
                        ),
                        f"{share:.0%}",
                        ">= 80%",
                    ],
                ],
            ),
            *(["", "Failure samples: " + "; ".join(failures)] if failures else []),
        ]
    )
    results.update({"overhead_ratio": overhead, "throughput_share": share})
    common.write_json(args.section, results)
    common.write_section(args.section, body)
    common.say(body)


if __name__ == "__main__":
    main()
