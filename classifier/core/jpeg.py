"""A JPEG's structure, read from its markers before anything decodes it.

Pillow reads a JPEG's header only up to its first scan, and its draft mode makes libjpeg
decode at a reduced scale, so a single-scan (baseline) JPEG costs only its reduced size.
A JPEG stored in several scans (progressive, or sequential with one scan per component)
does not: libjpeg keeps every DCT coefficient of the whole image at full resolution until
the last scan arrives, 128 bytes per 8x8 block of each component whatever the output scale,
and each scan is a pass over that buffer: a small progressive file can need hundreds of
megabytes, and thousands of scans minutes of CPU.
This module walks the marker segments (linear in the file's length, the entropy-coded data
skipped with one regular-expression search per scan) and reports the frame and the scans,
so the decode budget (classifier.core.decode) can count the coefficient buffer, and a file
with too many scans is refused before libjpeg sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from classifier.core.exceptions import GroupedNumber
from classifier.core.i18n import gettext_noop
from classifier.core.preprocessing import ImageDecodeError

# libjpeg's simple progression writes 10 scans for a colour image (6 for grey), and encoders
# that search for a better script (mozjpeg, jpegtran -optimize) stay under 20; even one scan
# per component and spectral band with every bit refined separately stays far below 64.
# Beyond this the scans are only there to make the decoder pass over the image again.
MAX_SCANS = 64
# A photo has a few dozen segments (APPn, DQT, DHT before each scan, SOF, SOS): this bounds
# the walk on a file made of nothing but tiny segments.
MAX_SEGMENTS = 1024
# Bytes of one 8x8 block of 16-bit coefficients (libjpeg's JBLOCK).
BLOCK_BYTES = 64 * 2

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
# Start-of-frame markers: every SOFn but DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# The DCT processes libjpeg decodes and Pillow's draft mode can scale: baseline, extended
# sequential and progressive, Huffman or arithmetic coded, 8 bits a sample. libjpeg-turbo 3
# also decodes lossless JPEG (SOF3, SOF11), but ignores the draft's scale there, so Pillow
# would write full-width rows into its scaled buffer: a heap overflow that aborts the worker.
# Hierarchical ones it cannot decode.
_DCT_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC9, 0xCA})
_PRECISION = 8
# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte) or a restart marker;
# anything else after it (fill bytes 0xFF aside) is the next marker.
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_FILL = re.compile(rb"\xff+")


@dataclass(frozen=True)
class JpegLayout:
    """The frame (size and each component's sampling factors) and the scans of a JPEG."""

    width: int
    height: int
    sampling: tuple[tuple[int, int], ...]  # (horizontal, vertical) per component
    progressive: bool
    scans: int
    first_scan_components: int

    @property
    def buffered(self) -> bool:
        """Whether libjpeg holds the whole image's coefficients (its has_multiple_scans)."""
        return self.progressive or self.scans > 1 or self.first_scan_components < len(self.sampling)

    def coefficient_bytes(self) -> int:
        """The whole-image coefficient buffer that libjpeg allocates (jdcoefct.c), or 0."""
        if not self.buffered:
            return 0
        max_h = max(h for h, _v in self.sampling)
        max_v = max(v for _h, v in self.sampling)
        total = 0
        for h, v in self.sampling:
            width_blocks = _ceil_div(self.width * h, max_h * 8)
            height_blocks = _ceil_div(self.height * v, max_v * 8)
            total += _round_up(width_blocks, h) * _round_up(height_blocks, v) * BLOCK_BYTES
        return total


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil_div(a, b) * b


def is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def _unreadable() -> ImageDecodeError:
    return ImageDecodeError(gettext_noop("not a recognised image format"))


def _frame(segment: bytes, marker: int) -> tuple[int, int, tuple[tuple[int, int], ...], bool]:
    if len(segment) < 6:
        raise _unreadable()
    if marker not in _DCT_SOF or segment[0] != _PRECISION:
        raise ImageDecodeError(
            gettext_noop("the image could not be decoded: %(detail)s"),
            detail=(
                f"a JPEG coded with start-of-frame 0x{marker:02X} at {segment[0]} bits is not supported "
                "(lossless, hierarchical and 12-bit JPEGs are not): send a baseline or progressive JPEG"
            ),
        )
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    count = segment[5]
    components = segment[6 : 6 + 3 * count]
    if count == 0 or len(components) < 3 * count:
        raise _unreadable()
    sampling = tuple((components[i + 1] >> 4, components[i + 1] & 0x0F) for i in range(0, 3 * count, 3))
    # libjpeg refuses factors outside 1-4 too; checked here so coefficient_bytes never divides by 0.
    if any(not (1 <= h <= 4 and 1 <= v <= 4) for h, v in sampling):
        raise _unreadable()
    return width, height, sampling, marker in _PROGRESSIVE_SOF


def _next_marker(data: bytes, pos: int) -> int | None:
    """The offset of the marker at or after ``pos``, or None at the end of the data."""
    if pos + 1 >= len(data):
        return None
    if data[pos] != 0xFF:
        # libjpeg skips stray bytes before a marker (with a warning); so does this.
        pos = data.find(b"\xff", pos)
        if pos < 0:
            return None
    pos = _FILL.match(data, pos).end() - 1
    return pos if pos + 1 < len(data) else None


def _segments(data: bytes, max_segments: int) -> Iterator[tuple[int, int, int]]:
    """(marker, payload start, payload end) of each segment up to EOI or the end of the
    data; a scan's entropy-coded data is skipped, not yielded."""
    pos: int | None = 2
    for _ in range(max_segments):
        pos = _next_marker(data, pos)
        if pos is None:
            return
        marker = data[pos + 1]
        if marker == _EOI:
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            # libjpeg skips such a segment after the last scan and decodes the picture, but
            # the metadata stripper cannot rewrite the file and would re-encode it at full
            # size, far beyond the memory the draft decode was allowed.
            raise ImageDecodeError(
                gettext_noop("the image could not be decoded: %(detail)s"),
                detail=f"the JPEG marker segment at byte {pos} has a bad length ({length})",
            )
        yield marker, pos + 4, end
        if marker == _SOS:
            found = _MARKER_AFTER_SCAN.search(data, end)
            if found is None:
                return
            end = found.start()
        pos = end
    raise ImageDecodeError(
        gettext_noop("the JPEG image has more than %(limit)s marker segments"),
        limit=GroupedNumber(max_segments),
    )


def inspect(data: bytes, *, max_scans: int = MAX_SCANS, max_segments: int = MAX_SEGMENTS) -> JpegLayout:
    """The frame and the scans of the JPEG ``data``, up to its first EOI.

    Refuses a file with more than ``max_scans`` scans or ``max_segments`` segments, and one
    without a frame header before its first scan (libjpeg could not decode it either), or
    with a marker segment whose length is under 2 or runs past the end of the data. A file
    cut short inside a scan is reported as far as it goes: the decoder refuses it later.
    """
    frame = None
    scans = 0
    first_scan_components = 0
    for marker, start, end in _segments(data, max_segments):
        if marker in _SOF_MARKERS and frame is None:
            frame = _frame(data[start:end], marker)
        elif marker == _SOS:
            if frame is None:
                raise _unreadable()
            scans += 1
            if scans > max_scans:
                raise ImageDecodeError(
                    gettext_noop("the JPEG image has more than %(limit)s scans"),
                    limit=GroupedNumber(max_scans),
                )
            if scans == 1 and end > start:
                first_scan_components = data[start]
    if frame is None or scans == 0:
        raise _unreadable()
    width, height, sampling, progressive = frame
    return JpegLayout(
        width=width,
        height=height,
        sampling=sampling,
        progressive=progressive,
        scans=scans,
        first_scan_components=first_scan_components,
    )
