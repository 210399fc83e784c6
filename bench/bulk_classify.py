"""`manage.py classify` over a folder of 1,000 JPEGs, with and without --save, against the raw floor.

The images are real 256x256 galaxies (../shared/data/galaxy10_decals_dev, flipped, rotated
and shifted so each file differs; generated when the data is absent), written once to
the work dir (/tmp/galaxy_bench, BENCH_WORK_DIR overrides). --save records into a fresh
PostgreSQL database (galaxy_bench, created and dropped here).

Floors, measured in this process on the same files at the start of the run:
  the model alone (already-decoded tensors): one interpreter at 1 thread and at one thread
  per core, and one 1-thread interpreter per core side by side, in calls of 4 and 16
  images; the fastest of these is the strict reference;
  a plain program: the files decoded and preprocessed (classifier.core.preprocessing) and
  classified by one 1-thread interpreter per core, decoding overlapped with inference on
  every core, without Django: what the command could reach at best.
The command's time is the whole process (Python and Django start included); the ratios
use its rate after start-up (a one-image run, the fastest of three, subtracted).

    python bench/bulk_classify.py [--quick] [--model PATH] [--images 1000]
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common as common
import _server as server
import numpy as np

INPUT_SHAPE = (128, 128, 3)
# The most images per interpreter call in classifier.core.inference (MAX_BATCH_SIZE).
MAX_BATCH = 2


def _interpreters(model: Path, count: int, threads: int, batch: int) -> list[tuple]:
    from ai_edge_litert.interpreter import Interpreter

    made = []
    for _ in range(count):
        interpreter = Interpreter(model_path=str(model), num_threads=threads)
        input_index = interpreter.get_input_details()[0]["index"]
        output_index = interpreter.get_output_details()[0]["index"]
        interpreter.resize_tensor_input(input_index, [batch, *INPUT_SHAPE])
        interpreter.allocate_tensors()
        made.append((interpreter, input_index, output_index))
    return made


def _invoke_all(interpreter_and_indices: tuple, batches: list[np.ndarray]) -> None:
    interpreter, input_index, output_index = interpreter_and_indices
    for batch in batches:
        interpreter.set_tensor(input_index, batch)
        interpreter.invoke()
        interpreter.get_tensor(output_index)


def interpreter_floor(
    model: Path, tensors: list[np.ndarray], *, count: int, threads: int, batch: int
) -> float:
    """Images/s of ``count`` interpreters (``threads`` threads each) side by side, already-decoded
    tensors, calls of ``batch`` images: the model alone, no decoding, no Django."""
    made = _interpreters(model, count, threads, batch)
    full = len(tensors) // batch * batch
    batches = [np.stack(tensors[i : i + batch]) for i in range(0, full, batch)]
    for one in made:
        _invoke_all(one, batches[:1])
    shares = [batches[k::count] for k in range(count)]
    with ThreadPoolExecutor(count) as pool:
        t0 = time.perf_counter()
        list(pool.map(_invoke_all, made, shares))
        elapsed = time.perf_counter() - t0
    return sum(len(share) for share in shares) * batch / elapsed


def pipeline_floor(model: Path, paths: list[Path], config, *, count: int, batch: int) -> float:  # noqa: ANN001
    """Images/s of the best plain program: files read, decoded and preprocessed
    (classifier.core.preprocessing) and classified by ``count`` 1-thread interpreters, with
    count + 1 threads overlapping decoding and inference on every core; no Django."""
    from classifier.core.preprocessing import preprocess

    made = _interpreters(model, count, 1, batch)
    idle: queue.SimpleQueue = queue.SimpleQueue()
    for one in made:
        _invoke_all(one, [np.zeros((batch, *INPUT_SHAPE), np.float32)])
        idle.put(one)
    full = len(paths) // batch * batch

    def job(chunk: list[Path]) -> None:
        tensors = np.stack([preprocess(path.read_bytes(), config) for path in chunk])
        one = idle.get()
        try:
            _invoke_all(one, [tensors])
        finally:
            idle.put(one)

    with ThreadPoolExecutor(count + 1) as pool:
        t0 = time.perf_counter()
        list(pool.map(job, [paths[i : i + batch] for i in range(0, full, batch)]))
        elapsed = time.perf_counter() - t0
    return full / elapsed


def floors(model: Path, paths: list[Path]) -> dict:
    from classifier.core.preprocessing import preprocess

    config = common.model_preprocessing(model)
    t0 = time.perf_counter()
    tensors = [preprocess(path.read_bytes(), config) for path in paths]
    decode_s = time.perf_counter() - t0
    cores = os.cpu_count() or 1
    result = {"decode, 1 thread": len(paths) / decode_s}
    for batch in (MAX_BATCH, 16):
        result[f"interpreter, 1 thread, batch {batch}"] = interpreter_floor(
            model, tensors, count=1, threads=1, batch=batch
        )
        if cores > 1:
            result[f"interpreter, {cores} threads, batch {batch}"] = interpreter_floor(
                model, tensors, count=1, threads=cores, batch=batch
            )
            result[f"{cores} interpreters x 1 thread side by side, batch {batch}"] = interpreter_floor(
                model, tensors, count=cores, threads=1, batch=batch
            )
    result[f"plain program: decode + {cores} interpreters on all cores, batch {MAX_BATCH}"] = pipeline_floor(
        model, paths, config, count=cores, batch=MAX_BATCH
    )
    return result


def run_classify(env: dict[str, str], folder: Path, *extra: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    completed = subprocess.run(  # noqa: S603
        [sys.executable, str(common.APP_DIR / "manage.py"), "classify", str(folder), *extra],
        env=env,
        cwd=common.APP_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if completed.returncode != 0:
        raise RuntimeError(f"classify failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return elapsed, completed


def main() -> None:
    parser = common.arg_parser(__doc__, section="bulk_classify", quick="100 images")
    parser.add_argument("--images", type=int, help="number of images (default 1000)")
    args = parser.parse_args()

    info = common.machine()
    busy = common.other_busy_processes()
    model = common.resolve_model(args.model)
    count = args.images or (100 if args.quick else 1000)
    all_paths = common.galaxy_jpegs(max(count, 1000), common.WORK_DIR / "images_256")[:count]
    floor = floors(model, all_paths)
    # The model alone, however it runs fastest here (no decoding): the strict reference.
    best_floor = max(value for key, value in floor.items() if "interpreter" in key and "program" not in key)
    # The best plain program that classifies the files (decoding included), without Django.
    program_floor = next(value for key, value in floor.items() if key.startswith("plain program"))

    runs = {}
    with tempfile.TemporaryDirectory(prefix="galaxy_bench_bulk_") as tmp, server.bench_database() as db_url:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for path in all_paths:
            (folder / path.name).symlink_to(path)
        env = server.app_env(database_url=db_url, model=model, media=Path(tmp) / "media")
        server.manage(env, "migrate", "--noinput")
        one = Path(tmp) / "one"
        one.mkdir()
        (one / all_paths[0].name).symlink_to(all_paths[0])
        # Python, Django and model start-up (one image: an empty folder is an error, and one
        # inference is negligible), to tell it apart from the per-image rate.
        startup = min(run_classify(env, one, "--output", str(Path(tmp) / "none.csv"))[0] for _ in range(3))
        for name, extra in (("without --save", []), ("with --save", ["--save"])):
            common.say(f"classify {count} images {name}")
            elapsed, _completed = run_classify(env, folder, "--output", str(Path(tmp) / "out.csv"), *extra)
            lines = (Path(tmp) / "out.csv").read_text().count("\n") - 1
            if lines != count:
                raise RuntimeError(f"classify wrote {lines} rows for {count} images")
            runs[name] = {
                "seconds": elapsed,
                "images_per_s": count / elapsed,
                "images_per_s_after_startup": count / (elapsed - startup),
            }

    rows = [
        [
            name,
            f"{run['seconds']:.2f}",
            f"{run['images_per_s']:.1f}",
            f"{run['images_per_s_after_startup']:.1f}",
            f"{run['images_per_s_after_startup'] / best_floor:.0%}",
            f"{run['images_per_s_after_startup'] / program_floor:.0%}",
        ]
        for name, run in runs.items()
    ]
    floor_rows = [[key, f"{value:.1f}"] for key, value in floor.items()]
    body = "\n".join(
        [
            common.machine_line(info),
            f"Model: {common.model_label(model)}. {count} images 256x256 JPEG. {common.run_notes(args)}",
            *(["CPU contention at start: " + "; ".join(busy)] if busy else []),
            "",
            common.table(["floor (same run, same files)", "images/s"], floor_rows),
            "",
            common.table(
                [
                    "manage.py classify",
                    "seconds (whole process)",
                    "images/s",
                    f"images/s after start-up ({startup:.2f} s)",
                    f"of the model alone at its fastest ({best_floor:.0f}/s)",
                    f"of the plain decode + model program ({program_floor:.0f}/s)",
                ],
                rows,
            ),
        ]
    )
    common.write_json(
        args.section,
        {
            "machine": info,
            "busy": busy,
            "floor": floor,
            "best_floor": best_floor,
            "program_floor": program_floor,
            "startup_s": startup,
            "runs": runs,
        },
    )
    common.write_section(args.section, body)
    common.say(body)


if __name__ == "__main__":
    main()
