"""The out-of-distribution gate's negatives (docs/ood.md): what a user might send that is not
a galaxy cutout, generated from a seed and encoded as an upload would arrive."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image


def _encode(array: np.ndarray, rng: np.random.Generator) -> bytes:
    """As an upload would arrive: JPEG at a usual quality, or PNG."""
    image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    if rng.random() < 0.7:
        image.save(buffer, "JPEG", quality=int(rng.integers(75, 96)))
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


def _upload_variants(photo: np.ndarray, rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    """The photo as sent, and random crops resized to usual upload sizes."""
    yield photo
    height, width = photo.shape[:2]
    for _ in range(count - 1):
        side_h = int(height * rng.uniform(0.4, 1.0))
        side_w = int(width * rng.uniform(0.4, 1.0))
        top = int(rng.integers(0, height - side_h + 1))
        left = int(rng.integers(0, width - side_w + 1))
        crop = Image.fromarray(photo[top : top + side_h, left : left + side_w])
        target = int(rng.choice([256, 424, 512, 800]))
        scale = target / min(crop.size)
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
        yield np.asarray(crop)


def natural_photos(rng: np.random.Generator, variants: int = 4) -> list[bytes]:
    """scikit-image's sample photographs (shipped in its wheel), cropped and resized like uploads.

    hubble_deep_field is left out: a field of galaxies is not a natural photograph.
    """
    import skimage.data

    names = (
        "astronaut", "brick", "camera", "cat", "cell", "clock", "coffee", "coins", "colorwheel",
        "grass", "gravel", "immunohistochemistry", "logo", "microaneurysms", "moon", "page",
        "retina", "rocket", "text",
    )  # fmt: skip
    out = []
    for name in names:
        photo = np.asarray(getattr(skimage.data, name)())
        if photo.ndim == 3 and photo.shape[2] == 4:
            photo = np.asarray(Image.fromarray(photo).convert("RGB"))
        out.extend(_encode(v, rng) for v in _upload_variants(photo, rng, variants))
    return out


def _sizes(rng: np.random.Generator) -> tuple[int, int]:
    side = int(rng.choice([128, 256, 424, 512]))
    return side, int(side * rng.choice([1.0, 1.0, 1.33, 0.75]))


def blank_frames(rng: np.random.Generator, count: int = 40) -> list[bytes]:
    out = []
    for i in range(count):
        height, width = _sizes(rng)
        colour = [0, 0, 0] if i % 4 == 0 else [255, 255, 255] if i % 4 == 1 else rng.integers(0, 256, 3)
        out.append(_encode(np.broadcast_to(np.asarray(colour, np.float64), (height, width, 3)).copy(), rng))
    return out


def noise_frames(rng: np.random.Generator, count: int = 40) -> list[bytes]:
    """Full-range uniform noise, Gaussian noise about a random level, and faint dark noise (empty sky)."""
    out = []
    for i in range(count):
        height, width = _sizes(rng)
        shape = (height, width, 3) if rng.random() < 0.7 else (height, width, 1)
        if i % 3 == 0:
            frame = rng.uniform(0, 255, shape)
        elif i % 3 == 1:
            frame = rng.normal(rng.uniform(40, 215), rng.uniform(10, 60), shape)
        else:
            frame = rng.normal(rng.uniform(5, 40), rng.uniform(2, 10), shape)
        out.append(_encode(np.broadcast_to(frame, (height, width, 3)).copy(), rng))
    return out


def gradient_frames(rng: np.random.Generator, count: int = 40) -> list[bytes]:
    """Linear gradients in random directions and radial ones (bright or dark centre)."""
    out = []
    for i in range(count):
        height, width = _sizes(rng)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        if i % 2 == 0:
            angle = rng.uniform(0, 2 * np.pi)
            t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height) / 2 + 0.5
        else:
            t = np.hypot(yy / height - 0.5, xx / width - 0.5) / 0.71
            if rng.random() < 0.5:
                t = 1 - t
        start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        frame = start + (end - start) * np.clip(t, 0, 1)[..., None]
        out.append(_encode(frame, rng))
    return out


def star_fields(rng: np.random.Generator, count: int = 60) -> list[bytes]:
    """Dark noisy sky with a few point sources (the PSF of a survey cutout) and no extended galaxy."""
    out = []
    for _ in range(count):
        side = int(rng.choice([256, 424]))
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
        sky = rng.uniform(3, 30)
        frame = rng.normal(sky, rng.uniform(1.5, 6), (side, side, 3))
        for _ in range(int(rng.integers(1, 13))):
            y, x = rng.uniform(0, side, 2)
            sigma = rng.uniform(0.8, 2.5) * side / 256
            peak = rng.uniform(40, 400)
            colour = rng.uniform(0.8, 1.2, 3)
            frame += peak * colour * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))[..., None]
        out.append(_encode(frame, rng))
    return out


NEGATIVES: dict[str, Callable[[np.random.Generator], list[bytes]]] = {
    "natural_photos": natural_photos,
    "blank": blank_frames,
    "noise": noise_frames,
    "gradients": gradient_frames,
    "star_fields": star_fields,
}
