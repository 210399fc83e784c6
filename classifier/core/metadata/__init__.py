"""The stored copy of an upload, without the metadata that can identify a person.

Photos carry EXIF (GPS position, camera serial, owner's name), XMP and IPTC. The
stored file is rewritten at the container level: the compressed image data is
copied byte for byte, so the pixels decode exactly as the upload's did, and only
the metadata blocks are left out. The EXIF orientation is the one piece kept (as an
orientation-only EXIF block), so the stored picture still displays upright.

A FITS file loses its personal and location header keywords (metadata/fits.py, docs/fits.md).

No maintained library strips these six formats losslessly, hence this package: one module
per container format, and this dispatcher. A container a module cannot walk (truncated, or a
variant it does not know) is re-encoded with Pillow instead (reencode.py): its first frame,
losslessly, except a JPEG, which keeps its quantisation tables.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

from classifier.core.fits_header import Headers
from classifier.core.metadata.fits import strip_private_keywords
from classifier.core.metadata.gif import strip_gif
from classifier.core.metadata.jpeg import strip_jpeg
from classifier.core.metadata.png import strip_png
from classifier.core.metadata.reencode import reencode
from classifier.core.metadata.tiff import strip_tiff
from classifier.core.metadata.webp import strip_webp

logger = logging.getLogger(__name__)

_REWRITERS: dict[str, Callable[[bytes], bytes]] = {
    "JPEG": strip_jpeg,
    "PNG": strip_png,
    "WEBP": strip_webp,
    "GIF": strip_gif,
    "TIFF": strip_tiff,
}


def strip_metadata(data: bytes, image_format: str, *, fits_headers: Headers | None = None) -> bytes:
    """A copy of ``data`` (an image in Pillow's ``image_format``) without EXIF, XMP, IPTC,
    comments and text chunks; its pixels decode identically and its orientation is kept.
    ``fits_headers``: a FITS upload's headers as its validation walked them (PreparedImage)."""
    if image_format == "FITS":
        # Header keywords that name a person or a place go; the data units stay byte for byte.
        return strip_private_keywords(data, fits_headers)
    rewrite = _REWRITERS.get(image_format)
    if rewrite is None:
        # BMP has no metadata blocks; anything else was refused before it got here.
        return data
    try:
        return rewrite(data)
    except (ValueError, struct.error, IndexError):  # ContainerError is a ValueError
        logger.info("re-encoding a %s upload to strip its metadata: unusual container", image_format)
        return reencode(data, image_format)
