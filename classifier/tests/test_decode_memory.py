"""Decoding is memory-bounded whatever the format, mode and bit depth (issue: memory bombs).

Each case is a real file that the test writes with Pillow: the largest image of its format and mode
that the limits accept, and the small-on-disk bombs that the attack used. The memory is the
process's own peak (VmHWM, reset before each measurement), in a fresh interpreter that has loaded
the shipped model, and then in a real gunicorn worker under concurrent uploads.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from classifier.tests.gunicorn_server import (
    ROOT,
    peak_rss_kb,
    post_images_at_once,
    running_gunicorn,
    wait_until_live,
)

pytestmark = pytest.mark.slow

MAX_DECODE_BYTES = 10_000_000
# Pillow's small conversion bands, the 1-2 MB of the file itself, numpy temporaries.
SLACK_BYTES = 8_000_000
WORKER_LIMIT_KB = 150 * 1024

# (format, mode, bytes per decoded pixel, save options). WebP decodes through libwebp's own
# frame buffer: 4 full-size copies at its peak (preprocessing._DECODER_COPIES).
CASES = [
    ("JPEG", "L", 1, {}),
    ("JPEG", "RGB", 4, {}),
    ("JPEG", "CMYK", 4, {}),
    ("PNG", "1", 1, {}),
    ("PNG", "L", 1, {}),
    ("PNG", "LA", 4, {}),
    ("PNG", "P", 1, {}),
    ("PNG", "P", 1, {"transparency": 0}),
    ("PNG", "RGB", 4, {}),
    ("PNG", "RGBA", 4, {}),
    ("PNG", "I;16", 2, {}),
    ("GIF", "P", 1, {"transparency": 0}),
    ("WEBP", "RGB", 16, {"lossless": True}),
    ("WEBP", "RGBA", 16, {"lossless": True}),
    ("TIFF", "1", 1, {"compression": "tiff_lzw"}),
    ("TIFF", "L", 1, {"compression": "tiff_lzw"}),
    ("TIFF", "RGB", 4, {"compression": "tiff_adobe_deflate"}),
    ("TIFF", "RGBA", 4, {"compression": "tiff_lzw"}),
    ("TIFF", "CMYK", 4, {"compression": "tiff_lzw"}),
    ("TIFF", "I;16", 2, {"compression": "tiff_lzw"}),
    ("TIFF", "F", 4, {"compression": "tiff_adobe_deflate"}),
    ("BMP", "1", 1, {}),
    ("BMP", "L", 1, {}),
    ("BMP", "P", 1, {}),
    ("BMP", "RGB", 4, {}),
]


def galaxy_like(mode: str, width: int, height: int) -> Image.Image:
    """A bright blob on a dark sky with a gradient: real pixel content, cheap to compress."""
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    level = np.exp(-(x * x + y * y) * 6.0) * 0.9 + 0.05 * (x + 1)
    if mode == "I;16":
        return Image.fromarray((level * 65535).astype(np.uint16))
    if mode == "F":
        return Image.fromarray(level.astype(np.float32))
    grey = Image.fromarray((level * 255).astype(np.uint8))
    if mode == "P":
        return grey.convert("RGB").quantize(32)
    if mode in ("RGBA", "LA"):
        return Image.merge("RGBA", [grey, grey, grey, grey]).convert(mode)
    return grey.convert(mode)


def image_file(fmt: str, mode: str, width: int, height: int, **options: object) -> bytes:
    buffer = io.BytesIO()
    galaxy_like(mode, width, height).save(buffer, fmt, **options)
    return buffer.getvalue()


def largest_accepted(fmt: str, mode: str, per_pixel: int, options: dict) -> bytes:
    if fmt == "JPEG":
        # The decoder reduces a JPEG while decoding it: the pixel cap is its only limit.
        return image_file(fmt, mode, 6000, 6000, quality=85)
    side = int(math.sqrt(MAX_DECODE_BYTES * 0.97 / per_pixel))
    return image_file(fmt, mode, side, side, **options)


def flat_file(fmt: str, mode: str, width: int, height: int, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, fmt, **options)
    return buffer.getvalue()


BOMBS = {
    # The attack's own files: a few kB on disk, hundreds of MB decoded at full size.
    "webp-16383x2441-lossless": lambda: flat_file("WEBP", "RGBA", 16383, 2441, lossless=True),
    "png-6324x6324-16bit": lambda: flat_file("PNG", "I;16", 6324, 6324),
    "png-6000x6000-palette-transparent": lambda: flat_file("PNG", "P", 6000, 6000, transparency=0),
    "gif-6000x6000": lambda: flat_file("GIF", "P", 6000, 6000),
    "png-6300x6300-rgba": lambda: flat_file("PNG", "RGBA", 6300, 6300),
    "tiff-6000x6000-float": lambda: flat_file("TIFF", "F", 6000, 6000, compression="tiff_adobe_deflate"),
}

# Runs in a fresh interpreter: the model loaded and warmed up first, then each file prepared
# with the peak reset before it. Prints one JSON line per file.
MEASURE = r"""
import json, os, sys, threading
import django
django.setup()
from galaxysite.memory import limit_malloc
limit_malloc()  # as gunicorn and Celery workers run
from classifier.predictions.inference import get_classifier
from classifier.core.preprocessing import ImageDecodeError
from classifier.tests.test_decode_memory import galaxy_like

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith(("VmHWM", "VmRSS")):
            yield int(line.split()[1])

classifier = get_classifier()
import io
warm = io.BytesIO()
galaxy_like("RGB", 256, 256).save(warm, "PNG")
classifier.classify(warm.getvalue())
paths = sys.argv[1:]
concurrent = paths[0] == "--concurrent"
if concurrent:
    paths = paths[1:]
datas = [open(p, "rb").read() for p in paths]
def prepare(data, out):
    try:
        classifier.prepare(data)
        out.append("accepted")
    except ImageDecodeError as exc:
        out.append("refused: " + str(exc))
open("/proc/self/clear_refs", "w").write("5")
before, _ = hwm()
if concurrent:
    outcomes = []
    threads = [threading.Thread(target=prepare, args=(d, outcomes)) for d in datas]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps({"outcomes": outcomes, "peak_growth": (next(hwm()) - before) * 1024}))
else:
    for path, data in zip(paths, datas):
        outcome = []
        open("/proc/self/clear_refs", "w").write("5")
        before, _ = hwm()
        prepare(data, outcome)
        peak, rss = hwm()
        print(json.dumps({"path": path, "outcome": outcome[0], "peak_growth": (peak - before) * 1024}))
"""


def measure(paths: list[str], *, concurrent: bool = False) -> list[dict]:
    env = {"DJANGO_SETTINGS_MODULE": "galaxysite.test_settings", "MAX_DECODE_BYTES": str(MAX_DECODE_BYTES)}
    args = ["--concurrent", *paths] if concurrent else paths
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_the_largest_accepted_image_of_every_format_and_mode_stays_within_the_decode_limit(tmp_path):
    paths = []
    for fmt, mode, per_pixel, options in CASES:
        path = tmp_path / f"{fmt}-{mode.replace(';', '')}-{len(options)}.{fmt.lower()}"
        path.write_bytes(largest_accepted(fmt, mode, per_pixel, options))
        paths.append(str(path))
    results = measure(paths)
    assert len(results) == len(CASES)
    report = "\n".join(
        f"{r['path'].rsplit('/', 1)[-1]}: {r['outcome']} +{r['peak_growth'] / 1e6:.1f} MB" for r in results
    )
    for result in results:
        assert result["outcome"] == "accepted", report
        assert result["peak_growth"] <= MAX_DECODE_BYTES + SLACK_BYTES, report


def test_the_attack_files_are_refused_without_being_decoded(tmp_path):
    paths = []
    for name, make in BOMBS.items():
        path = tmp_path / name
        path.write_bytes(make())
        assert path.stat().st_size < 400_000  # small on disk, which is the point
        paths.append(str(path))
    results = measure(paths)
    report = "\n".join(
        f"{r['path'].rsplit('/', 1)[-1]}: {r['outcome']} +{r['peak_growth'] / 1e6:.1f} MB" for r in results
    )
    for result in results:
        assert result["outcome"].startswith("refused: the image is"), report
        assert "would need" in result["outcome"], report
        assert result["peak_growth"] <= SLACK_BYTES, report


def test_concurrent_decodes_share_one_memory_budget(tmp_path):
    # Eight of the costliest accepted files at once: without the shared budget eight
    # threads would hold eight decoded buffers together.
    paths = []
    for index in range(8):
        fmt, mode, per_pixel, options = CASES[(9, 10, 17, 13)[index % 4]]
        path = tmp_path / f"{index}.{fmt.lower()}"
        path.write_bytes(largest_accepted(fmt, mode, per_pixel, options))
        paths.append(str(path))
    [result] = measure(paths, concurrent=True)
    assert result["outcomes"] == ["accepted"] * 8
    assert result["peak_growth"] <= MAX_DECODE_BYTES + 2 * SLACK_BYTES, result


def test_a_gunicorn_worker_stays_within_150_mb_under_concurrent_bombs_and_large_images(tmp_path):
    files = {name: make() for name, make in BOMBS.items()}
    for fmt, mode, per_pixel, options in (CASES[9], CASES[10], CASES[13], CASES[17], CASES[1]):
        files[f"big-{fmt}-{mode}.{fmt.lower()}"] = largest_accepted(fmt, mode, per_pixel, options)
    with running_gunicorn(
        tmp_path,
        workers=1,
        threads=4,
        migrate=True,
        # The worker as the Docker image runs it: without the test tools that DRF and
        # drf-spectacular import when they find them (about 8 MB here).
        runtime_only=True,
        MAX_DECODE_BYTES=str(MAX_DECODE_BYTES),
        API_ANON_THROTTLE_RATE="1000/minute",
    ) as server:
        server.wait_for_log("loaded model")
        wait_until_live(server)
        [worker] = server.worker_pids()
        results: list[int] = []
        # Three rounds of every file at once, as the attack sent them.
        for _ in range(3):
            results += post_images_at_once(f"{server.url}/api/predictions/", files.items())
        peak_kb = peak_rss_kb(worker)
    assert sorted(set(results)) == [201, 400], results
    assert results.count(201) == 3 * 5
    assert peak_kb <= WORKER_LIMIT_KB, f"worker peak {peak_kb / 1024:.0f} MB"


def test_the_measured_worker_imports_only_runtime_packages(tmp_path):
    # The worker above is measured without the test tools; this proves they are really kept out
    # while the runtime packages still import.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "classifier/tests/runtime_only"), str(ROOT)]),
        "RUNTIME_ONLY_LOCK": str(ROOT / "requirements.lock"),
    }
    probe = (
        "import django, rest_framework, PIL, numpy\n"
        "for name in ('requests', 'pytest', 'playwright'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        print('refused', name)\n"
    )
    command = [sys.executable, "-c", probe]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:3] == ["refused requests", "refused pytest", "refused playwright"]
