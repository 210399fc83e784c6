"""Image preprocessing shared by training (ml/) and serving (classifier.core.inference).

This module depends on numpy, Pillow and the plain-Python classifier.core.exceptions
only, so training imports it without Django and the web app without the training
stack. The parameters travel in the model manifest
(``PreprocessConfig.to_manifest``), so serving always crops, resizes and
normalises exactly as the model was trained.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import asdict, dataclass
from typing import IO, Any

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from classifier.core.exceptions import ImageDecodeError

ImageSource = bytes | str | os.PathLike[str] | IO[bytes]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


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


_HIGH_BIT_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_rgb(image: Image.Image, *, source_mode: str | None = None, peak: float | None = None) -> Image.Image:
    """RGB from any mode. ``source_mode`` and ``peak`` describe the decoded image this one
    was reduced from, when it was (a 16-bit image is reduced as 32-bit "I")."""
    mode = image.mode
    if mode == "RGB":
        return image
    if (source_mode or mode) in _HIGH_BIT_DEPTH:
        # High-bit-depth scans: rescale to 8 bits instead of letting Pillow clip.
        peak = _high_bit_depth_peak(image) if peak is None else peak
        values = np.asarray(image, dtype=np.float64)
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
    except _DECODE_ERRORS as exc:
        raise ImageDecodeError("the image could not be decoded: %(detail)s", detail=str(exc)) from exc


def centre_crop_resize(
    image: Image.Image,
    *,
    size: int,
    crop_fraction: float,
    resample: str = "bilinear",
    side: float | None = None,
) -> np.ndarray:
    """Square centre crop of ``crop_fraction`` of the short side (or of ``side`` pixels),
    resized to ``size``."""
    width, height = image.size
    if side is None:
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


# Bytes per pixel of the buffer Pillow decodes each mode into; every other mode takes 4.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Decoders that hold a second full-size buffer while decoding: Pillow's WebP plugin
# decodes into libwebp's RGBA frame and copies it (measured in classifier/tests/test_decode_memory.py).
_DECODER_COPIES = {"WEBP": 4}
# Modes that are reduced in another mode, converted a band of rows at a time: palette
# indices and 1-bit values cannot be averaged, Image.reduce() has no 16-bit kernel, and
# for RGBA and LA it premultiplies alpha by converting a full-size copy first.
_WORKING_MODE = {
    "1": ("L",),
    "P": ("RGBA", "RGBa"),
    "PA": ("RGBA", "RGBa"),
    "RGBA": ("RGBa",),
    "LA": ("La",),
    "I;16": ("I",),
    "I;16L": ("I",),
    "I;16B": ("I",),
    "I;16N": ("I",),
}
# The reduced premultiplied image goes back to straight alpha for _to_rgb.
_STRAIGHT_ALPHA = {"RGBa": "RGBA", "La": "LA"}
_BAND_BYTES = 1024 * 1024
# Up to this many pixels the full-size conversions cost little memory, even for 16 bits.
_EXACT_PATH_PIXELS = 1024 * 1024
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112
# What Pillow raises on a damaged file, its EXIF parser included (a JPEG with one byte changed in its
# EXIF gave TypeError and struct.error).
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError, struct.error)


def open_image(source: ImageSource, config: PreprocessConfig) -> Image.Image:
    """Open without decoding. A JPEG is set to decode at the smallest DCT scale that
    still has twice the pixels the crop needs, so its decoded size is known before
    decoding (``decoded_bytes``)."""
    image = _open(source)
    if image.format == "JPEG":
        side = draft_size_for(config)
        image.draft("RGB", (side, side))
    return image


def exif_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation tag, read without decoding the pixels; None if there is none
    or the EXIF block is damaged (the picture is then used as stored).

    Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the
    pixel data, so for PNG only a chunk before the pixels (the usual place) is read.
    """
    try:
        if image.format == "PNG":
            raw = image.info.get("exif")
            if not raw:
                return None
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = image.getexif()
        orientation = exif.get(_EXIF_ORIENTATION)
    except _DECODE_ERRORS:
        return None
    return orientation if orientation in _TRANSPOSE else None


def _tiff_tile_bytes(image: Image.Image) -> int:
    """The buffer libtiff decodes each tile of a tiled TIFF into: the tile's declared size,
    which may be far larger than the image (a 64x64 TIFF with one 16384x16384 Deflate tile
    inflated 805 MB from a 783 kB file). 0 for a TIFF in strips, or anything else."""
    if image.format != "TIFF":
        return 0
    tags = getattr(image, "tag_v2", {})
    width, length = tags.get(ExifTags.Base.TileWidth), tags.get(ExifTags.Base.TileLength)
    if not isinstance(width, int) or not isinstance(length, int):
        return 0
    bits = tags.get(ExifTags.Base.BitsPerSample, 8)
    bits = max(bits) if isinstance(bits, tuple) and bits else bits
    samples = tags.get(ExifTags.Base.SamplesPerPixel, 1)
    if not isinstance(bits, int) or not isinstance(samples, int):
        return 0
    return width * length * max(samples, 1) * max(-(-bits // 8), 1)


def decoded_bytes(image: Image.Image) -> int:
    """The memory decoding ``image`` (from open_image) takes at its peak, in bytes."""
    copies = _DECODER_COPIES.get(image.format or "", 1)
    return image.width * image.height * _PIXEL_BYTES.get(image.mode, 4) * copies + _tiff_tile_bytes(image)


def preprocess_image(image: Image.Image, config: PreprocessConfig) -> np.ndarray:
    """Decode an image from open_image into the model input, holding one full-size buffer.

    An image of up to a megapixel that needs no reduction takes the training pipeline's exact
    path (load_rgb, then centre_crop_resize), so serving and training give identical tensors.
    Otherwise the centre crop (plus a margin for the resize filter) is taken and box-reduced
    by an integer factor straight from the decoded buffer, and conversion to RGB and the EXIF
    rotation work on that small image: a large palette, 16-bit or transparent image costs
    its decoded size and no full-size copies (the limits in docs/uploads.md rest on this).
    """
    try:
        orientation = exif_orientation(image)
        image.load()
        side = min(image.size) * config.crop_fraction
        factor = max(1, int(side // (2 * config.size)))
        if factor == 1 and image.width * image.height <= _EXACT_PATH_PIXELS:
            # What load_rgb does for training (ImageOps.exif_transpose makes the same turn).
            upright = image.transpose(_TRANSPOSE[orientation]) if orientation else image
            small, side_small = _to_rgb(upright), None
        else:
            peak = _high_bit_depth_peak(image)
            source_mode = image.mode
            # A centred box keeps the crop centred under any EXIF rotation or flip.
            margin = 4 * factor + 2
            x0 = max(0, int((image.width - side) / 2) - margin)
            y0 = max(0, int((image.height - side) / 2) - margin)
            box = (x0, y0, image.width - x0, image.height - y0)
            small = _reduce(image, box, factor)
            image.close()
            side_small = side * small.width / (box[2] - box[0])
            small = _to_rgb(small, source_mode=source_mode, peak=peak)
            if orientation in _TRANSPOSE:
                small = small.transpose(_TRANSPOSE[orientation])
    except _DECODE_ERRORS as exc:
        raise ImageDecodeError("the image could not be decoded: %(detail)s", detail=str(exc)) from exc
    pixels = centre_crop_resize(
        small, size=config.size, crop_fraction=config.crop_fraction, resample=config.resample, side=side_small
    )
    return normalise(pixels, config)


def _reduce(image: Image.Image, box: tuple[int, int, int, int], factor: int) -> Image.Image:
    if factor == 1:
        # The crop of an image this small is small too: converted afterwards as it is.
        return image.crop(box)
    steps = _WORKING_MODE.get(image.mode)
    if steps is None:
        return image.reduce(factor, box=box)
    if image.mode == "P" and "transparency" not in image.info:
        steps = ("RGB",)
    x0, y0, x1, y1 = box
    rows = max(factor, _BAND_BYTES // (4 * (x1 - x0)) // factor * factor)
    out = Image.new(steps[-1], (-(-(x1 - x0) // factor), -(-(y1 - y0) // factor)))
    for top in range(y0, y1, rows):
        band = image.crop((x0, top, x1, min(top + rows, y1)))
        for mode in steps:
            band = band.convert(mode)
        out.paste(band.reduce(factor), (0, (top - y0) // factor))
    return out.convert(_STRAIGHT_ALPHA[out.mode]) if out.mode in _STRAIGHT_ALPHA else out


def _high_bit_depth_peak(image: Image.Image) -> float:
    """The value that maps to white for 16-bit, 32-bit and float images, from the full
    decoded image (before averaging lowers the maximum)."""
    if image.mode not in _HIGH_BIT_DEPTH:
        return 255.0
    high = image.getextrema()[1]
    if image.mode == "F" and high <= 1.0:
        return 1.0
    return 65535.0 if image.mode.startswith("I;16") or high > 255 else 255.0


def preprocess(source: ImageSource, config: PreprocessConfig) -> np.ndarray:
    """The model input for one image: float32 array of shape (size, size, 3)."""
    return preprocess_image(open_image(source, config), config)
