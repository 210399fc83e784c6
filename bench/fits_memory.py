"""Memory cost of the first FITS upload in a worker: importing astropy and decoding one cutout.

A fresh process sets Django up, loads the model and classifies one PNG (the baseline, as a
worker that has served images), then one 3 x 256 x 256 float32 g, r, z cube as the Legacy
Surveys cutout service serves it, then a second one. RSS and peak RSS are read after each step;
the cost of FITS is the difference from the baseline in the same process.

    python bench/fits_memory.py [--rounds 3]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import _common as common

STEPS = """
import io, json, os, sys
sys.path.insert(0, {bench!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "galaxysite.test_settings")
import django
django.setup()
import numpy as np
from PIL import Image
import _common as common
from classifier.predictions.inference import get_classifier

classifier = get_classifier()
png = io.BytesIO(); Image.new("RGB", (256, 256), (40, 40, 90)).save(png, format="PNG")
classifier.classify(png.getvalue())
out = {{"png": (common.rss_mb(), common.peak_rss_mb())}}
# Made in a child so that writing them does not import astropy here.
cubes = [bytes.fromhex(h) for h in json.loads(sys.stdin.read())]
classifier.classify(cubes[0])
out["first_fits"] = (common.rss_mb(), common.peak_rss_mb())
classifier.classify(cubes[1])
out["second_fits"] = (common.rss_mb(), common.peak_rss_mb())
print(json.dumps(out))
"""

MAKE_CUBES = """
import io, json, numpy as np
from astropy.io import fits
out = []
for seed in (1, 2):
    cube = np.random.default_rng(seed).normal(0, 0.01, (3, 256, 256)).astype(np.float32)
    buffer = io.BytesIO(); fits.PrimaryHDU(cube).writeto(buffer); out.append(buffer.getvalue().hex())
print(json.dumps(out))
"""


def main() -> None:
    parser = common.arg_parser(__doc__, section="fits_memory")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cubes = subprocess.run(  # noqa: S603
        [sys.executable, "-c", MAKE_CUBES], check=True, capture_output=True, text=True
    ).stdout
    script = STEPS.format(bench=str(common.REPO / "bench"))
    runs = []
    for _ in range(args.rounds):
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", script],
            input=cubes,
            check=True,
            capture_output=True,
            text=True,
            cwd=common.REPO,
        )
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    rows = []
    for step in ("png", "first_fits", "second_fits"):
        rss = statistics.median(run[step][0] for run in runs)
        peak = statistics.median(run[step][1] for run in runs)
        base = statistics.median(run["png"][0] for run in runs)
        rows.append([step, f"{rss:.1f}", f"{peak:.1f}", f"{rss - base:+.1f}"])
    body = "\n".join(
        [
            common.machine_line(common.machine()),
            "",
            f"Median of {args.rounds} fresh processes (MB = 10^6 bytes).",
            "",
            common.table(["after", "RSS MB", "peak RSS MB", "RSS vs PNG baseline"], rows),
        ]
    )
    common.say(body)


if __name__ == "__main__":
    main()
