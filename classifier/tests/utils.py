"""Helpers the tests import (fixtures stay in the root conftest.py)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path

from django.db import connection
from PIL import Image

GALAXY_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "galaxy10_decals_dev"


def make_image_bytes(
    *,
    fmt: str = "PNG",
    size: tuple[int, int] = (96, 80),
    mode: str = "RGB",
    color: object = (30, 60, 200),
    **save_kwargs: object,
) -> bytes:
    """A real image file made with Pillow, for plumbing tests that need no galaxy."""
    image = Image.new(mode, size, color)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return buffer.getvalue()


def media_files(root: Path) -> list[Path]:
    """Every file under ``root`` (a test's MEDIA_ROOT), sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def in_thread(target: Callable[[], object], results: dict, key: str) -> threading.Thread:
    """Run ``target`` on a started thread with its own database connection; its return value,
    or the exception it raised, lands in ``results[key]``."""

    def run() -> None:
        try:
            results[key] = target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test's assertions
            results[key] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=key, daemon=True)
    thread.start()
    return thread


def galaxy_jpeg(seed: int = 0, side: int = 256, *, stars: int = 0) -> bytes:
    """A synthetic survey cutout: an inclined exponential disc on dark, noisy sky (with
    ``stars`` faint stars), as JPEG."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) - (side - 1) / 2
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) / rng.uniform(0.5, 0.9)
    radius = np.hypot(u, v)
    light = 200 * np.exp(-radius / (side * 0.035)) + 60 * np.exp(-radius / (side * 0.01))
    frame = rng.normal(12, 4, (side, side, 1)) + light[..., None] * np.array([1.0, 0.92, 0.8])
    for _ in range(stars):
        y, x = rng.uniform(0, side, 2) - (side - 1) / 2
        frame += 90 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.0)[..., None]
    buffer = io.BytesIO()
    Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
