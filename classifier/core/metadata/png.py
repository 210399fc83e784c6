"""PNG: a signature, then length-type-data-CRC chunks. Ancillary chunks that do not change how
the pixels look go."""

from __future__ import annotations

import zlib

from classifier.core.metadata.common import MAX_PARTS, ContainerError, orientation_exif, orientation_of

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The chunks that affect how the pixels look (APNG's included); other ancillary chunks
# (tEXt, zTXt, iTXt, eXIf, tIME and private ones such as C2PA's caBX) are dropped.
_PNG_KEPT_ANCILLARY = frozenset(
    {b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI", b"bKGD", b"hIST"}
    | {b"pHYs", b"sPLT", b"acTL", b"fcTL", b"fdAT"}
)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")


def strip_png(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise ContainerError("no PNG signature")
    parts: list[bytes] = [_PNG_SIGNATURE]
    orientation = None
    exif_seen = False
    first_idat = None
    pos = len(_PNG_SIGNATURE)
    while True:
        if len(parts) >= MAX_PARTS or pos + 12 > len(data):
            raise ContainerError("no IEND chunk")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ContainerError(f"chunk {kind!r} runs past the end")
        if kind == b"eXIf" and not exif_seen:
            exif_seen = True
            orientation = orientation_of(data[pos + 8 : pos + 8 + length])
        # An unknown critical chunk (upper-case first letter) stays: a decoder needs it.
        if kind[:1].isupper() or kind in _PNG_KEPT_ANCILLARY:
            if kind == b"IDAT" and first_idat is None:
                first_idat = len(parts)
            parts.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break  # anything after IEND is dropped
    if orientation:
        if first_idat is None:
            raise ContainerError("no IDAT chunk")
        # Before the image data, where the PNG specification puts eXIf.
        parts.insert(first_idat, _png_chunk(b"eXIf", orientation_exif(orientation)[6:]))
    return b"".join(parts)
