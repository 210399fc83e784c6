"""The image files the classifier reads, by their name's suffix (lower case)."""

from __future__ import annotations

# Decoded by Pillow.
RASTER_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp"})
# Decoded by classifier.core.fits.
FITS_SUFFIXES = frozenset({".fits", ".fit", ".fts"})
IMAGE_SUFFIXES = RASTER_SUFFIXES | FITS_SUFFIXES
