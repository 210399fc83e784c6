"""Decoded, cropped and resized training images, cached as uint8 arrays.

Decoding 12,000 JPEGs takes minutes; every epoch reads them again, so each
source is decoded once into ``ml/cache/`` (ignored by git) with a margin of
context around the nominal crop for the geometric augmentation.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from classifier.core.preprocessing import PreprocessConfig, centre_crop_resize, load_rgb, normalise
from ml.sources import H5Image, ImageRef, SourceSet

CACHE_DIR = Path(__file__).with_name("cache")


def cached_fraction(crop_fraction: float, margin: float) -> float:
    return min(1.0, crop_fraction * margin)


def load_image(ref: ImageRef) -> Image.Image:
    if isinstance(ref, H5Image):
        import h5py

        with h5py.File(ref.path, "r") as h5:
            return Image.fromarray(np.asarray(h5["images"][ref.index], dtype=np.uint8))
    return load_rgb(ref)


def source_inputs(source: SourceSet, pre: PreprocessConfig) -> np.ndarray:
    """Model inputs (N, size, size, 3) through the serving preprocessing, with the source's own crop."""
    arrays = []
    for ref in tqdm(source.images, desc=f"preprocess {source.name}", mininterval=5):
        pixels = centre_crop_resize(
            load_image(ref),
            size=pre.size,
            crop_fraction=source.crop_fraction,
            resample=pre.resample,
        )
        arrays.append(normalise(pixels, pre))
    return np.stack(arrays) if arrays else np.zeros((0, pre.size, pre.size, 3), np.float32)


def _decode(job: tuple[ImageRef, int, float]) -> np.ndarray:
    ref, side, fraction = job
    return centre_crop_resize(load_image(ref), size=side, crop_fraction=fraction)


def cache_pixels(
    source: SourceSet, *, side: int, margin: float, cache_dir: Path | None = None, workers: int = 2
) -> np.ndarray:
    """uint8 array (N, side, side, 3) of the source's crops with ``margin`` context."""
    cache_dir = cache_dir or CACHE_DIR
    fraction = cached_fraction(source.crop_fraction, margin)
    fingerprint = hashlib.sha256(json.dumps([source.name, source.keys, side, fraction]).encode()).hexdigest()[
        :16
    ]
    path = cache_dir / f"{source.name.replace(':', '_')}-{side}-{fingerprint}.npy"
    if path.exists():
        return np.load(path)
    jobs = [(ref, side, fraction) for ref in source.images]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pixels = list(
            tqdm(pool.map(_decode, jobs, chunksize=32), total=len(jobs), desc=f"cache {source.name}")
        )
    array = np.stack(pixels) if pixels else np.zeros((0, side, side, 3), np.uint8)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return array
