"""From uploaded bytes to the model's input, within the pixel and memory limits.

The header and format are checked before any pixel is decoded, so a decompression bomb (a
tiny file with huge dimensions) or a format outside ACCEPTED_FORMATS is refused unread. The
decoded size is then counted against two limits: the most one image may need
(DecodeLimits.max_decode_bytes), and the most this process's threads may hold at once
(DecodeLimits.memory_budget, shared through the process-wide DecodeBudget).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from classifier.core import fits, jpeg
from classifier.core.exceptions import GroupedNumber
from classifier.core.fits_header import Headers
from classifier.core.i18n import gettext_noop
from classifier.core.preprocessing import (
    ImageDecodeError,
    ImageSource,
    PreprocessConfig,
    decoded_bytes,
    exif_orientation,
    open_image,
    preprocess_image,
)

# Pillow inflates a PNG's zTXt and iTXt chunks as it opens the file, by default up to a size
# far outside the decode budget. Nothing reads them (the stored copy drops them,
# classifier.core.metadata); more than this is refused.
PngImagePlugin.MAX_TEXT_MEMORY = 256 * 1024

# Formats accepted from uploads, with the extension the stored copy gets. Anything
# else Pillow could open (EPS, PSD, ICO, ...) is refused: a smaller attack surface.
ACCEPTED_FORMATS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "TIFF": "tif",
    "BMP": "bmp",
    # Read by classifier.core.fits (astropy), not Pillow; stored as sent.
    "FITS": "fits",
}
_ORIENTATIONS_SWAPPING_AXES = {5, 6, 7, 8}


@dataclass(frozen=True)
class DecodeLimits:
    """How large an image may be: in pixels, in memory to decode it, and in memory that all
    the images being decoded in this process at once may hold (the larger of the last two)."""

    max_pixels: int = 40_000_000
    max_decode_bytes: int = 10_000_000
    memory_budget: int = 10_000_000

    @property
    def budget_capacity(self) -> int:
        # With a budget below the per-image limit, an image the limit allows could never go.
        return max(self.memory_budget, self.max_decode_bytes)


@dataclass(frozen=True)
class PreparedImage:
    """A decoded, validated image: the model input and the upright size of the original."""

    tensor: np.ndarray
    width: int
    height: int
    image_format: str
    # A single-band FITS image, classified in grey (docs/fits.md).
    single_band: bool = False
    # The ICRS (ra, dec) of a FITS image's centre, from its celestial WCS (docs/positions.md).
    sky_centre: tuple[float, float] | None = None
    # A FITS cube without BAND keywords, read as g, r, z.
    bands_assumed: bool = False
    # A FITS file's headers as validation walked them, for the stored copy's keyword stripper.
    fits_headers: Headers | None = None


class DecodeBudget:
    """The decoded-image memory that this process's threads may hold at once.

    A threaded worker decodes several uploads side by side; each reserves its decoded
    size (preprocessing.decoded_bytes) and waits while the others' reservations would
    exceed the capacity, so the memory a worker spends on decoding stays bounded however
    many large images arrive together. Decoding is quick and bounded by the pixel and
    decode limits, so a wait is short.
    """

    def __init__(self) -> None:
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int, *, capacity: int) -> Iterator[None]:
        with self._changed:
            # With nothing reserved any single image may go, so no reservation waits forever.
            while self._used and self._used + nbytes > capacity:
                self._changed.wait()
            self._used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self._used -= nbytes
                self._changed.notify_all()


# One per process: the memory it bounds is the process's.
DECODE_BUDGET = DecodeBudget()


def read_bytes(source: ImageSource) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | Path) or hasattr(source, "__fspath__"):
        return Path(source).read_bytes()
    if hasattr(source, "seek"):
        source.seek(0)
    return source.read()


def inspect_header(data: bytes, *, max_pixels: int) -> tuple[int, int, str]:
    """Width and height after EXIF rotation and the format, read before any decoding.

    Refuses images with more than ``max_pixels`` pixels, so a decompression bomb
    (a tiny file with huge dimensions) is never decoded.
    """
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
            image_format = header.format or ""
            orientation = exif_orientation(header)
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            gettext_noop("the image has too many pixels (limit %(limit)s)"), limit=GroupedNumber(max_pixels)
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(gettext_noop("not a recognised image format")) from exc
    if image_format not in ACCEPTED_FORMATS:
        accepted = ", ".join(ACCEPTED_FORMATS)
        if not image_format:
            raise ImageDecodeError(
                gettext_noop("this images are not accepted (accepted: %(accepted)s)"), accepted=accepted
            )
        raise ImageDecodeError(
            gettext_noop("%(format)s images are not accepted (accepted: %(accepted)s)"),
            format=image_format,
            accepted=accepted,
        )
    if width <= 0 or height <= 0:
        raise ImageDecodeError(gettext_noop("the image has no pixels"))
    if width * height > max_pixels:
        raise ImageDecodeError(
            gettext_noop("the image is %(width)sx%(height)s pixels, more than the limit of %(limit)s pixels"),
            width=width,
            height=height,
            limit=GroupedNumber(max_pixels),
        )
    if orientation in _ORIENTATIONS_SWAPPING_AXES:
        width, height = height, width
    return width, height, image_format


def _megabytes(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.0f}"


def prepare_image(source: ImageSource, config: PreprocessConfig, limits: DecodeLimits) -> PreparedImage:
    """Decode and preprocess one image; raises ImageDecodeError for anything unusable,
    including an image whose decoding would need more than ``limits.max_decode_bytes``."""
    data = read_bytes(source)
    if not data:
        raise ImageDecodeError(gettext_noop("the file is empty"))
    if fits.is_fits(data):
        return _prepare_fits(data, config, limits)
    # Read from the markers before Pillow parses anything, so a file of thousands of
    # scans or segments is refused without being walked by Pillow or libjpeg (classifier.core.jpeg).
    layout = jpeg.inspect(data) if jpeg.is_jpeg(data) else None
    width, height, image_format = inspect_header(data, max_pixels=limits.max_pixels)
    max_bytes = limits.max_decode_bytes
    try:
        image = open_image(data, config)
        cost = decoded_bytes(image)
        if layout is not None and layout.buffered:
            # Draft mode shrinks the output, not the full-size coefficient buffer that a
            # progressive or multi-scan JPEG is decoded into.
            cost += layout.coefficient_bytes()
            if cost > max_bytes:
                raise ImageDecodeError(
                    gettext_noop(
                        "the image is a progressive or multi-scan JPEG of %(width)sx%(height)s pixels "
                        "and would need %(needed)s MB of memory to decode, more than the limit of "
                        "%(limit)s MB: send a smaller image, or a baseline JPEG"
                    ),
                    width=layout.width,
                    height=layout.height,
                    needed=_megabytes(cost),
                    limit=_megabytes(max_bytes),
                )
        if cost > max_bytes:
            raise ImageDecodeError(
                gettext_noop(
                    "the image is %(width)sx%(height)s pixels in %(mode)s mode and would need "
                    "%(needed)s MB of memory to decode, more than the limit of %(limit)s MB: "
                    "send a smaller image, or a JPEG"
                ),
                width=width,
                height=height,
                mode=image.mode,
                needed=_megabytes(cost),
                limit=_megabytes(max_bytes),
            )
        with DECODE_BUDGET.reserve(cost, capacity=limits.budget_capacity):
            tensor = preprocess_image(image, config)
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            gettext_noop("the image has too many pixels (limit %(limit)s)"),
            limit=GroupedNumber(limits.max_pixels),
        ) from exc
    return PreparedImage(tensor=tensor, width=width, height=height, image_format=image_format)


def fits_layout(data: bytes, limits: DecodeLimits) -> fits.FitsLayout:
    """The FITS image's layout, every header size and the decoding cost checked against the limits."""
    layout = fits.inspect(data, max_pixels=limits.max_pixels)
    cost = layout.decoded_bytes()
    if cost > limits.max_decode_bytes:
        raise ImageDecodeError(
            gettext_noop(
                "the FITS image is %(shape)s values of %(bitpix)s bits and would need %(needed)s MB "
                "of memory to decode, more than the limit of %(limit)s MB: send a smaller cutout"
            ),
            shape="x".join(str(n) for n in layout.shape),
            bitpix=abs(layout.bitpix),
            needed=_megabytes(cost),
            limit=_megabytes(limits.max_decode_bytes),
        )
    return layout


def _fits_reserved(layout: fits.FitsLayout, limits: DecodeLimits) -> AbstractContextManager[None]:
    return DECODE_BUDGET.reserve(layout.decoded_bytes(), capacity=limits.budget_capacity)


def _prepare_fits(data: bytes, config: PreprocessConfig, limits: DecodeLimits) -> PreparedImage:
    layout = fits_layout(data, limits)
    with _fits_reserved(layout, limits):
        rgb = fits.read_rgb(data, layout)
        tensor = preprocess_image(Image.fromarray(rgb, "RGB"), config)
    return PreparedImage(
        tensor=tensor,
        width=layout.width,
        height=layout.height,
        image_format="FITS",
        single_band=layout.band_count == 1,
        bands_assumed=layout.bands_assumed,
        sky_centre=fits.sky_centre(layout),
        fits_headers=layout.headers,
    )


def fits_preview_png(data: bytes, limits: DecodeLimits) -> bytes:
    """A stored FITS upload coloured as PNG for pages, under the same limits and decode budget
    as an upload (the limits may have changed since it was stored); raises ImageDecodeError."""
    layout = fits_layout(data, limits)
    with _fits_reserved(layout, limits):
        return fits.preview_png(data, layout)
