"""The fallback for a container the strippers cannot walk: decode and encode again with Pillow."""

from __future__ import annotations

import io

from PIL import Image

from classifier.core.metadata.common import ORIENTATION_TAG, orientation_exif, turning

# What a re-encoded image keeps of Pillow's info: how its frames are shown, nothing else.
_REENCODED_INFO = frozenset({"transparency", "background", "duration", "loop", "disposal", "blend", "dpi"})


def reencode(data: bytes, image_format: str) -> bytes:
    """Pillow's re-encoding in the same format, from fresh images that carry none of the
    source's tags (Pillow copies a TIFF's XMP and IPTC unless the image is a copy)."""
    with Image.open(io.BytesIO(data)) as source:
        # The first frame only, the one the classifier saw: decoding every frame of a
        # hostile animation could take far more memory than validating the upload did.
        icc_profile = source.info.get("icc_profile")
        # A JPEG is saved from itself, so that its quantisation tables can be kept.
        image = source if image_format == "JPEG" else source.copy()
        # Read after decoding: Pillow turns some TIFFs upright as it loads them, and then
        # drops their orientation tag, which must not be applied a second time.
        tags = source.tag_v2 if image_format == "TIFF" else source.getexif()
        orientation = turning(tags.get(ORIENTATION_TAG))
        # Pillow writes some of a source's info back (a JPEG's or GIF's comment, XMP).
        image.info = {key: value for key, value in image.info.items() if key in _REENCODED_INFO}
        params: dict[str, object] = {}
        if icc_profile:
            params["icc_profile"] = icc_profile
        if orientation and image_format != "GIF":
            params["exif"] = orientation_exif(orientation)
        if image_format == "JPEG":
            params |= {"quality": "keep", "subsampling": "keep"}
        if image_format == "WEBP":
            params |= {"lossless": True, "exact": True}
        if image_format == "TIFF":
            params["compression"] = "tiff_adobe_deflate"
        buffer = io.BytesIO()
        image.save(buffer, format=image_format, **params)
    return buffer.getvalue()
