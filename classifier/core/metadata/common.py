"""What the per-format strippers share: the refusal of a container they cannot walk, the bound
on the parts of a hostile file, and the orientation-only EXIF block the stored copy keeps."""

from __future__ import annotations

import struct

from PIL import ExifTags, Image

ORIENTATION_TAG = ExifTags.Base.Orientation
# A sane file has a handful; this bounds the work on a hostile one.
MAX_PARTS = 100_000
METADATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError, struct.error)


class ContainerError(ValueError):
    """The bytes are not a container this package can rewrite safely."""


def turning(value: object) -> int | None:
    """An EXIF orientation value that turns or flips the picture (2 to 8), else None."""
    return value if isinstance(value, int) and 2 <= value <= 8 else None


def orientation_of(exif_block: bytes) -> int | None:
    """The orientation in an EXIF block ("Exif\\0\\0" prefix or bare TIFF), if it turns the picture."""
    exif = Image.Exif()
    try:
        exif.load(exif_block)
        return turning(exif.get(ORIENTATION_TAG))
    except METADATA_ERRORS:
        return None


def orientation_exif(orientation: int) -> bytes:
    """An EXIF block holding the orientation and nothing else, with the "Exif\\0\\0" prefix."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()
