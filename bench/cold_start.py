"""Cold start: from launching gunicorn to the first answered prediction (HTTP 201).

Each round starts a fresh gunicorn (2 workers x 4 threads, PostgreSQL database galaxy_bench
created and migrated beforehand, not timed), then POSTs one real galaxy JPEG as soon as the
port accepts connections and keeps retrying until a 201 arrives. The first prediction
waits for a worker to load and verify the model: at worker start with the app's gunicorn
settings (galaxysite/gunicorn.py), on first use in checkouts without them.
Reference in the same run: a bare Python process that imports ai-edge-litert, loads the
model and answers one call (no web stack).

    python bench/cold_start.py [--quick] [--model PATH] [--rounds 5]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import _server as server

BARE = """
import time, numpy as np
t0 = time.perf_counter()
from ai_edge_litert.interpreter import Interpreter
i = Interpreter(model_path={model!r}, num_threads=1); i.allocate_tensors()
d = i.get_input_details()[0]
i.set_tensor(d["index"], np.zeros(d["shape"], np.float32)); i.invoke()
i.get_tensor(i.get_output_details()[0]["index"])
"""


def bare_start(model: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE.format(model=str(model))], check=True, capture_output=True)  # noqa: S603
    return time.perf_counter() - t0


def one_round(env: dict[str, str], body: bytes, content_type: str) -> dict:
    app = server.Gunicorn(env)
    with app:
        common.wait_for_port(app.port, 60)
        listening = time.perf_counter() - app.started_at
        client = server.Client(app.port)
        status = 0
        deadline = time.perf_counter() + 120
        while status != 201 and time.perf_counter() < deadline:
            try:
                status, _ = client.post(body, content_type)
            except OSError:
                time.sleep(0.01)
        first = time.perf_counter() - app.started_at
        client.close()
        t0 = time.perf_counter()
        client = server.Client(app.port)
        client.post(body, content_type)
        second_ms = (time.perf_counter() - t0) * 1000
        client.close()
    if status != 201:
        raise RuntimeError(f"no 201 within 120 s (last status {status})")
    return {"listening_s": listening, "first_201_s": first, "next_request_ms": second_ms}


def main() -> None:
    parser = common.arg_parser(__doc__, section="cold_start", quick="one round")
    parser.add_argument("--rounds", type=int, help="gunicorn starts to time (default 5)")
    args = parser.parse_args()

    info = common.machine()
    busy = common.other_busy_processes()
    model = common.resolve_model(args.model)
    rounds = args.rounds or (1 if args.quick else 5)
    image = common.galaxy_jpegs(1, common.WORK_DIR / "images_256")[0]
    body, content_type = server.multipart([(image.name, image.read_bytes())])
    bare = [bare_start(model) for _ in range(rounds)]
    results = []
    with tempfile.TemporaryDirectory(prefix="galaxy_bench_cold_") as tmp, server.bench_database() as db_url:
        env = server.app_env(database_url=db_url, model=model, media=Path(tmp) / "media")
        server.manage(env, "migrate", "--noinput")
        for index in range(rounds):
            common.say(f"round {index + 1}/{rounds}")
            results.append(one_round(env, body, content_type))

    def stats(values: list[float]) -> str:
        return f"{common.percentile(values, 50):.2f} (min {min(values):.2f}, max {max(values):.2f})"

    first = [r["first_201_s"] for r in results]
    body_text = "\n".join(
        [
            common.machine_line(info),
            (f"Model: {common.model_label(model)}. {rounds} round(s). {common.run_notes(args)}"),
            *(["CPU contention at start: " + "; ".join(busy)] if busy else []),
            "",
            common.table(
                ["measure", "median seconds (min, max)"],
                [
                    [
                        "gunicorn start -> port accepts connections",
                        stats([r["listening_s"] for r in results]),
                    ],
                    ["gunicorn start -> first 201 (includes the model load)", stats(first)],
                    ["bare Python: import ai-edge-litert, load model, one call", stats(bare)],
                ],
            ),
            "",
            (
                "The request right after the first 201 took "
                f"{common.percentile([r['next_request_ms'] for r in results], 50):.1f} ms "
                "(median; it may reach the other worker, which has loaded the model at its "
                "start with the app's gunicorn settings, or loads it now without them)."
            ),
        ]
    )
    common.write_json(args.section, {"machine": info, "busy": busy, "rounds": results, "bare_s": bare})
    common.write_section(args.section, body_text)
    common.say(body_text)


if __name__ == "__main__":
    main()
