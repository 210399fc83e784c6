"""The plain program an upload is compared with: decode, resize and run the model, nothing else.

Run as a subprocess by bench/upload_cpu.py, so its CPU is its own: it reads the JPEGs into
memory, then for each one decodes it with Pillow, takes the centre crop the model's manifest
declares, resizes it bilinearly, normalises it and runs one interpreter call at 1 thread, as a
user's own script would. It imports nothing from the app, so the same program serves as the
baseline for any checkout (only the model and its manifest change). Prints JSON: CPU and wall
milliseconds per image over ``repeats`` passes after one warm-up pass.

    python bench/_plain_program.py MODEL MANIFEST IMAGE_DIR COUNT REPEATS
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image


def main() -> None:
    model, manifest, folder, count, repeats = sys.argv[1:6]
    config = json.loads(Path(manifest).read_text())["preprocessing"]
    size, crop = int(config["size"]), float(config["crop_fraction"])
    mean, std = float(config["mean"]), float(config["std"])
    images = [path.read_bytes() for path in sorted(Path(folder).glob("*.jpg"))[: int(count)]]
    interpreter = Interpreter(model_path=model, num_threads=1)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def one(data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as image:
            # JPEG DCT scaling, keeping at least twice the pixels the crop needs (as the app does).
            image.draft("RGB", (2 * round(size / crop),) * 2)
            rgb = image.convert("RGB")
        width, height = rgb.size
        side = min(width, height) * crop
        box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
        pixels = np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR, box=box), dtype=np.float32)
        interpreter.set_tensor(input_index, ((pixels - mean) / std)[None])
        interpreter.invoke()
        interpreter.get_tensor(output_index)

    for data in images:
        one(data)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(int(repeats)):
        for data in images:
            one(data)
    n = len(images) * int(repeats)
    json.dump(
        {
            "images": n,
            "cpu_ms_per_image": (time.process_time() - cpu0) * 1000 / n,
            "wall_ms_per_image": (time.perf_counter() - wall0) * 1000 / n,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
