"""Image preprocessing shared by training (ml/) and serving (classifier.inference).

This module depends on numpy, Pillow and the plain-Python classifier.exceptions
only, so training imports it without Django and the web app without the training
stack. The parameters travel in the model manifest
(``PreprocessConfig.to_manifest``), so serving always crops, resizes and
normalises exactly as the model was trained.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from classifier.exceptions import fill_template

ImageSource = bytes | str | os.PathLike[str] | IO[bytes]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class ImageDecodeError(ValueError):
    """The bytes are not an image that can be used; str() is the English explanation.

    ``template`` is that explanation with %(name)s fields and ``params`` fills them, so a
    page can show it in the reader's language (classifier/upload_messages.py) while the
    API and the command line report the English text.
    """

    def __init__(self, template: str, **params: object) -> None:
        self.template = template
        self.params = params
        super().__init__(fill_template(template, params))


@dataclass(frozen=True)
class PreprocessConfig:
    size: int = 160
    # Galaxy10 DECaLS cutouts show the galaxy with a wide margin; a centre crop
    # matches the tighter framing the model learnt from the SDSS crops.
    crop_fraction: float = 0.7
    resample: str = "bilinear"
    mean: float = 127.0
    std: float = 128.0
    dtype: str = "float32"
    layout: str = "NHWC"
    channels: str = "RGB"

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> PreprocessConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        config = cls(**known)
        if config.resample not in _RESAMPLE:
            raise ValueError(f"unknown resample filter {config.resample!r}")
        if not 0 < config.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {config.crop_fraction}")
        return config

    def to_manifest(self) -> dict[str, Any]:
        return asdict(self)


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        return Image.open(source)
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not a recognised image format") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # High-bit-depth scans: rescale to 8 bits instead of letting Pillow clip.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        if mode == "F" and values.max(initial=0) <= 1.0:
            peak = 1.0
        eight_bit = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(eight_bit, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels become black sky rather than white paper.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_rgb(source: ImageSource, *, draft_size: int | None = None) -> Image.Image:
    """Decode fully (truncated files fail here), apply EXIF orientation, return RGB.

    Animated images are reduced to their first frame. ``draft_size`` lets the
    JPEG decoder downscale by a power of two while keeping at least that many
    pixels on the short side, which makes large uploads cheap to decode.
    """
    image = _open(source)
    try:
        if draft_size and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError("the image could not be decoded: %(detail)s", detail=str(exc)) from exc


def centre_crop_resize(
    image: Image.Image, *, size: int, crop_fraction: float, resample: str = "bilinear"
) -> np.ndarray:
    """Square centre crop of ``crop_fraction`` of the short side, resized to ``size``."""
    width, height = image.size
    side = min(width, height) * crop_fraction
    left = (width - side) / 2
    top = (height - side) / 2
    resized = image.resize(
        (size, size),
        _RESAMPLE[resample],
        box=(left, top, left + side, top + side),
        reducing_gap=None,
    )
    return np.asarray(resized, dtype=np.uint8)


def normalise(pixels: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    return ((pixels.astype(np.float32) - config.mean) / config.std).astype(config.dtype)


def draft_size_for(config: PreprocessConfig) -> int:
    # Twice the pixels the crop needs keeps the draft's box filter from
    # touching the final bilinear resize.
    return int(2 * config.size / config.crop_fraction)


def preprocess(source: ImageSource, config: PreprocessConfig) -> np.ndarray:
    """The model input for one image: float32 array of shape (size, size, 3)."""
    image = load_rgb(source, draft_size=draft_size_for(config))
    pixels = centre_crop_resize(
        image, size=config.size, crop_fraction=config.crop_fraction, resample=config.resample
    )
    return normalise(pixels, config)
