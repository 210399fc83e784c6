"""`manage.py classify` over a folder of 1,000 JPEGs, with and without --save, against the raw floor.

The images are real 256x256 galaxies (../shared/data/galaxy10_decals_dev, flipped, rotated
and shifted so each file differs; generated when the data is absent), written once to
the work dir (/tmp/galaxy_bench, BENCH_WORK_DIR overrides). --save records into a fresh
PostgreSQL database (galaxy_bench, created and dropped here).

Floors, measured in this process on the same files at the start of the run:
  interpreter only: batched interpreter calls (batch 16) at 1 and at all cores' threads;
  decode + interpreter: the same plus decode + preprocess, one after the other in one thread.
The command's time is the whole process (Python and Django start included).

    python bench/bulk_classify.py [--quick] [--model PATH] [--images 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import _server as server
import numpy as np

BATCH = 16


def floors(model: Path, paths: list[Path]) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    from classifier.preprocessing import PreprocessConfig, preprocess

    manifest = common.json.loads(common.manifest_for(model).read_text())
    config = PreprocessConfig.from_manifest(manifest["preprocessing"])
    t0 = time.perf_counter()
    tensors = [preprocess(path.read_bytes(), config) for path in paths]
    decode_s = time.perf_counter() - t0
    result = {"decode_images_per_s": len(paths) / decode_s}
    for threads in sorted({1, os.cpu_count() or 1}):
        interpreter = Interpreter(model_path=str(model), num_threads=threads)
        input_index = interpreter.get_input_details()[0]["index"]
        output_index = interpreter.get_output_details()[0]["index"]
        interpreter.resize_tensor_input(input_index, [BATCH, *tensors[0].shape])
        interpreter.allocate_tensors()
        full = len(tensors) // BATCH * BATCH
        batches = [np.stack(tensors[i : i + BATCH]) for i in range(0, full, BATCH)]
        interpreter.set_tensor(input_index, batches[0])
        interpreter.invoke()
        t0 = time.perf_counter()
        for batch in batches:
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
            interpreter.get_tensor(output_index)
        infer_s = time.perf_counter() - t0
        result[f"interpreter_{threads}_threads_images_per_s"] = full / infer_s
        result[f"decode_plus_interpreter_{threads}_threads_images_per_s"] = full / (
            infer_s + decode_s * full / len(paths)
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 images: a smoke test, not a measurement")
    parser.add_argument("--model", help="TFLite model (default: the shipped one)")
    parser.add_argument("--images", type=int, help="number of images (default 1000)")
    parser.add_argument("--label", default="", help="a note on what this run varies, shown in the doc")
    parser.add_argument("--section", default="bulk_classify", help="doc section name (to keep several runs)")
    args = parser.parse_args()

    info = common.machine()
    busy = common.other_busy_processes()
    model = common.resolve_model(args.model)
    count = args.images or (100 if args.quick else 1000)
    all_paths = common.galaxy_jpegs(max(count, 1000), common.WORK_DIR / "images_256")[:count]
    floor = floors(model, all_paths)
    best_floor = max(value for key, value in floor.items() if key.startswith("interpreter_"))

    runs = {}
    with tempfile.TemporaryDirectory(prefix="galaxy_bench_bulk_") as tmp, server.bench_database() as db_url:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for path in all_paths:
            (folder / path.name).symlink_to(path)
        env = server.app_env(database_url=db_url, model=model, media=Path(tmp) / "media")
        server.manage(env, "migrate", "--noinput")
        empty = Path(tmp) / "empty"
        empty.mkdir()
        # Python, Django and model start-up (no images), to tell it apart from the per-image rate.
        startup = min(run_classify(env, empty, "--output", str(Path(tmp) / "none.csv"))[0] for _ in range(3))
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
            f"{run['images_per_s'] / best_floor:.0%}",
            f"{run['images_per_s_after_startup']:.1f}",
            f"{run['images_per_s_after_startup'] / best_floor:.0%}",
        ]
        for name, run in runs.items()
    ]
    floor_rows = [[key.replace("_", " "), f"{value:.1f}"] for key, value in floor.items()]
    body = "\n".join(
        [
            common.machine_line(info),
            f"Model: {common.model_label(model)}. {count} images 256x256 JPEG. "
            f"Mode: {'QUICK (smoke test only)' if args.quick else 'full'}."
            + (f" Run: {args.label}." if args.label else ""),
            *(["CPU contention at start: " + "; ".join(busy)] if busy else []),
            "",
            common.table(["floor (same run, same files)", "images/s"], floor_rows),
            "",
            common.table(
                [
                    "manage.py classify",
                    "seconds (whole process)",
                    "images/s",
                    "of best interpreter floor",
                    f"images/s after start-up ({startup:.2f} s)",
                    "of best interpreter floor",
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
            "startup_s": startup,
            "runs": runs,
        },
    )
    common.write_section(args.section, body)
    common.say(body)


if __name__ == "__main__":
    main()
