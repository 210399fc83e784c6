"""JPEG: a sequence of marker segments, then entropy-coded scans. APPn and COM segments go,
except the ones needed to decode and show the pixels."""

from __future__ import annotations

from collections.abc import Iterator

from classifier.core.metadata.common import MAX_PARTS, ContainerError, orientation_exif, orientation_of

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_APP0, _APP1, _APP2, _APP14, _COM = 0xE0, 0xE1, 0xE2, 0xEE, 0xFE
_JFIF_HEADER_LENGTH = 14  # "JFIF\0", version, units, densities, thumbnail size


def _kept_jpeg_segment(marker: int, payload: bytes) -> bytes | None:
    """The payload to keep for an APPn or COM segment, or None to drop it."""
    if marker == _APP0 and payload.startswith(b"JFIF\0") and len(payload) >= _JFIF_HEADER_LENGTH:
        # JFIF without its thumbnail (a thumbnail can show what a crop removed).
        return payload[:12] + b"\0\0"
    if marker == _APP2 and payload.startswith(b"ICC_PROFILE\0"):
        return payload
    if marker == _APP14 and payload.startswith(b"Adobe"):
        return payload  # the colour transform: needed to decode the pixels
    # Exif and XMP (APP1), MPF (APP2, whose extra images follow EOI), IPTC (APP13), COM, others.
    return None


def _scan_end(data: bytes, pos: int) -> int:
    """The offset of the marker that ends the entropy-coded data starting at ``pos``."""
    while True:
        pos = data.index(b"\xff", pos)
        follower = data[pos + 1]
        if follower == 0xFF:  # fill byte
            pos += 1
        elif follower == 0x00 or 0xD0 <= follower <= 0xD7:  # stuffed 0xFF, or a restart marker
            pos += 2
        else:
            return pos


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each marker and its whole segment, a scan's entropy-coded data included, up to EOI."""
    pos = 2
    for _ in range(MAX_PARTS):
        if data[pos] != 0xFF:
            # Like libjpeg, skip stray bytes before a marker (they are not part of the picture).
            pos = data.index(b"\xff", pos)
        while data[pos + 1] == 0xFF:
            pos += 1
        marker = data[pos + 1]
        if marker == _EOI:
            yield marker, b"\xff\xd9"  # anything after it (MPF images, appended files) is dropped
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            yield marker, data[pos : pos + 2]
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ContainerError(f"bad segment length at {pos}")
        if marker == _SOS:
            end = _scan_end(data, end)
        yield marker, data[pos:end]
        pos = end
    raise ContainerError("too many segments")


def strip_jpeg(data: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise ContainerError("no SOI marker")
    parts: list[bytes] = [b"\xff\xd8"]
    orientation = None
    exif_seen = False
    for marker, segment in _jpeg_segments(data):
        if not (_APP0 <= marker <= 0xEF or marker == _COM):
            parts.append(segment)
            continue
        payload = segment[4:]
        if marker == _APP1 and payload.startswith(b"Exif\0\0") and not exif_seen:
            # Pillow, like browsers, reads the first Exif block only.
            exif_seen = True
            orientation = orientation_of(payload)
        kept = _kept_jpeg_segment(marker, payload)
        if kept is not None:
            parts.append(bytes((0xFF, marker)) + (len(kept) + 2).to_bytes(2, "big") + kept)
    if orientation:
        # After SOI and JFIF's APP0, where readers look for Exif.
        at = 2 if parts[1][1] == _APP0 else 1
        exif = orientation_exif(orientation)
        parts.insert(at, b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif)
    return b"".join(parts)
