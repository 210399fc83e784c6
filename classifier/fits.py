"""FITS cutouts to RGB, the way the Legacy Surveys viewer colours DECaLS g, r, z images.

Django-free, like classifier.preprocessing. astropy is imported inside the functions that
read a file, never at module import: a worker that is never sent a FITS file does not pay
for it (docs/fits.md has the measured cost).

The colour recipe is the viewer's ``dr2_rgb`` (``sdss_rgb`` with the DECaLS scales), cited
and written out in docs/fits.md.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from classifier.exceptions import Count
from classifier.preprocessing import ImageDecodeError

# Every FITS file starts with this card (FITS standard 4.0, section 4.4.1.1).
FITS_MAGIC = b"SIMPLE  ="
# The Legacy Surveys viewer's dr2_rgb: band -> (RGB plane, scale), softening m and stretch Q.
DECALS_SCALES: dict[str, tuple[int, float]] = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2)}
DECALS_M = 0.03
DECALS_Q = 20.0
CUBE_BANDS = ("g", "r", "z")
# A lone band is stretched as the middle (r) band of the recipe.
GREY_BAND = "r"
# Decoding holds, per value: the raw bytes, astropy's scaled copy (float64 at most, when the
# header has BSCALE/BZERO), a float32 copy and a finiteness mask (1 byte); and per pixel about
# seven float32 planes while the colours are computed (intensity, stretch, 3 channels, temporaries).
_BYTES_PER_VALUE = 8 + 4 + 1
_WORKING_PLANES = 7
_IMAGE_HDUS = ("PrimaryHDU", "ImageHDU", "CompImageHDU")
_TABLE_HDUS = ("BinTableHDU", "TableHDU")


@dataclass(frozen=True)
class FitsLayout:
    """What the headers say about the first image HDU, read before its data."""

    index: int
    shape: tuple[int, ...]  # numpy order: (bands, height, width) or (height, width)
    bitpix: int
    bands: tuple[str, ...]

    @property
    def height(self) -> int:
        return self.shape[-2]

    @property
    def width(self) -> int:
        return self.shape[-1]

    @property
    def band_count(self) -> int:
        return 1 if len(self.shape) == 2 else self.shape[0]

    def decoded_bytes(self) -> int:
        values = math.prod(self.shape)
        per_value = abs(self.bitpix) // 8 + _BYTES_PER_VALUE
        return values * per_value + self.height * self.width * 4 * _WORKING_PLANES


def is_fits(data: bytes) -> bool:
    return data.startswith(FITS_MAGIC)


def _open(data: bytes) -> Any:
    from astropy.io import fits  # only when a FITS file arrives

    try:
        return fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True)
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ImageDecodeError("the FITS file could not be read: %(detail)s", detail=str(exc)) from exc


def _shape_without_unit_axes(header: Any) -> tuple[int, ...]:
    naxis = int(header.get("NAXIS", 0))
    # FITS lists axes fastest first; numpy's order is the reverse.
    shape = tuple(int(header.get(f"NAXIS{axis}", 0)) for axis in range(naxis, 0, -1))
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _band_names(header: Any, count: int) -> tuple[str, ...]:
    # The Legacy Surveys cutout service names its planes BAND0, BAND1, ...
    names = tuple(str(header.get(f"BAND{i}", "")).strip().lower() for i in range(count))
    return names if all(names) else CUBE_BANDS[:count]


def inspect(data: bytes, *, max_pixels: int) -> FitsLayout:
    """Find the first image HDU and check its shape from the headers, without reading pixels."""
    with _open(data) as hdus:
        saw_table = False
        try:
            for index, hdu in enumerate(hdus):
                kind = type(hdu).__name__
                if kind in _TABLE_HDUS:
                    saw_table = True
                    continue
                if kind not in _IMAGE_HDUS or int(hdu.header.get("NAXIS", 0)) == 0:
                    continue
                shape = _shape_without_unit_axes(hdu.header)
                layout = FitsLayout(
                    index=index,
                    shape=shape,
                    bitpix=int(hdu.header.get("BITPIX", -32)),
                    bands=_band_names(hdu.header, shape[0]) if len(shape) == 3 else (GREY_BAND,),
                )
                break
            else:
                if saw_table:
                    raise ImageDecodeError("the FITS file holds a table, not an image")
                raise ImageDecodeError("the FITS file holds no image")
        except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise ImageDecodeError("the FITS file could not be read: %(detail)s", detail=str(exc)) from exc
    _check_layout(layout, max_pixels=max_pixels)
    return layout


def _check_layout(layout: FitsLayout, *, max_pixels: int) -> None:
    shape = layout.shape
    dimensions = "x".join(str(n) for n in shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[0] != len(CUBE_BANDS)):
        raise ImageDecodeError(
            "the FITS image has shape %(shape)s: send one band (height x width) "
            "or a g, r, z cube (3 x height x width)",
            shape=dimensions,
        )
    if min(shape) <= 0:
        raise ImageDecodeError("the image has no pixels")
    if len(shape) == 3 and sorted(layout.bands) != sorted(CUBE_BANDS):
        raise ImageDecodeError(
            "the FITS cube has bands %(bands)s: only g, r, z cubes are accepted",
            bands=", ".join(layout.bands),
        )
    if shape[-1] * shape[-2] > max_pixels:
        raise ImageDecodeError(
            "the image is %(width)sx%(height)s pixels, more than the limit of %(limit)s pixels",
            width=shape[-1],
            height=shape[-2],
            limit=Count(max_pixels),
        )


def decals_rgb(
    images: list[np.ndarray],
    bands: tuple[str, ...],
    *,
    scales: dict[str, tuple[int, float]] = DECALS_SCALES,
    m: float = DECALS_M,
    q: float = DECALS_Q,
) -> np.ndarray:
    """The viewer's sdss_rgb: float32 (H, W, 3) in [0, 1] from band images in nanomaggies.

    Every band is scaled and softened, ``x = b * scale + m``; the mean of ``max(0, x)`` is the
    intensity ``I``; each plane is ``x * asinh(Q * I) / sqrt(Q) / I``, clipped to [0, 1].
    """
    intensity = np.zeros(images[0].shape, np.float32)
    for image, band in zip(images, bands, strict=True):
        _, scale = scales[band]
        intensity += np.maximum(0, image * scale + m)
    intensity /= len(bands)
    stretched = np.arcsinh(q * intensity) / np.sqrt(q)
    intensity += (intensity == 0.0) * 1e-6
    rgb = np.zeros((*intensity.shape, 3), np.float32)
    for image, band in zip(images, bands, strict=True):
        plane, scale = scales[band]
        rgb[:, :, plane] = (image * scale + m) * stretched / intensity
    return np.clip(rgb, 0, 1)


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """One band through the same recipe as an r image, put in all three planes."""
    plane = decals_rgb([image], (GREY_BAND,))[:, :, DECALS_SCALES[GREY_BAND][0]]
    return np.repeat(plane[:, :, None], 3, axis=2)


def read_rgb(data: bytes, layout: FitsLayout) -> np.ndarray:
    """uint8 (H, W, 3) with north up: the image HDU found by inspect(), coloured.

    Blank pixels (NaN or infinite) count as empty sky (0); an image with no finite pixel is refused.
    """
    with _open(data) as hdus:
        try:
            values = np.asarray(hdus[layout.index].data, dtype=np.float32).reshape(layout.shape)
        except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise ImageDecodeError("the FITS file could not be read: %(detail)s", detail=str(exc)) from exc
    if not np.isfinite(values).any():
        raise ImageDecodeError("the FITS image has no finite values (all NaN or infinite)")
    np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    rgb = grey_rgb(values) if values.ndim == 2 else decals_rgb(list(values), layout.bands)
    # FITS rows run south to north; images are drawn from the top.
    return np.round(rgb[::-1] * 255.0).astype(np.uint8)


def preview_png(data: bytes, *, max_pixels: int) -> bytes:
    """The coloured image as PNG, for pages: browsers cannot draw a FITS file."""
    buffer = io.BytesIO()
    Image.fromarray(read_rgb(data, inspect(data, max_pixels=max_pixels)), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()
