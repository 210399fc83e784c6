"""The app's own classification path, without the web stack, at a gunicorn worker's thread count.

Run as a subprocess by bench/upload_cpu.py beside bench/_plain_program.py. It builds the
serving core's classifier (classifier.core.inference.GalaxyClassifier, Django-free: what a
worker's uploads call) from the checkout in APP_DIR, and runs ``prepare`` + ``classify_prepared``
(decode, the model call, the out-of-distribution gate, the Galaxy Zoo answer) on the same
images from THREADS threads of one process, as a worker's request threads would. Prints JSON:
CPU and wall milliseconds per image over ``repeats`` passes after one warm-up pass, or
{"skipped": reason} for a checkout without that core (before the reshaping).

With the stack's floor (an empty request through the same gunicorn and middleware), this is
the least an upload can cost a worker before any of its own web work (the multipart body,
the throttle, the audit row, the file, the answer).

    python bench/_app_path.py APP_DIR MODEL MANIFEST IMAGE_DIR COUNT REPEATS THREADS
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main() -> None:
    app_dir, model, manifest, folder, count, repeats, threads = sys.argv[1:8]
    sys.path.insert(0, app_dir)
    try:
        from classifier.core.inference import GalaxyClassifier
    except ImportError as exc:
        json.dump({"skipped": f"no Django-free serving core in this checkout ({exc})"}, sys.stdout)
        return
    classifier = GalaxyClassifier.from_files(model_path=Path(model), manifest_path=Path(manifest))
    images = [path.read_bytes() for path in sorted(Path(folder).glob("*.jpg"))[: int(count)]]

    def one(data: bytes) -> None:
        classifier.classify_prepared([classifier.prepare(data)])

    with ThreadPoolExecutor(int(threads)) as pool:
        list(pool.map(one, images))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        list(pool.map(one, images * int(repeats)))
        n = len(images) * int(repeats)
        json.dump(
            {
                "images": n,
                "threads": int(threads),
                "cpu_ms_per_image": (time.process_time() - cpu0) * 1000 / n,
                "wall_ms_per_image": (time.perf_counter() - wall0) * 1000 / n,
            },
            sys.stdout,
        )


if __name__ == "__main__":
    main()
