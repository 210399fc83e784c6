"""GIF: blocks and extensions, each made of length-prefixed sub-blocks. Comments and other
applications' data go."""

from __future__ import annotations

from classifier.core.metadata.common import MAX_PARTS, ContainerError

# Looping (Netscape, AnimExts) and the ICC profile; XMP and other applications' data go.
_GIF_KEPT_APPLICATIONS = frozenset({b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"})
_GIF_EXTENSION, _GIF_IMAGE, _GIF_TRAILER = 0x21, 0x2C, 0x3B
_GIF_APPLICATION, _GIF_COMMENT = 0xFF, 0xFE


def _gif_sub_blocks_end(data: bytes, pos: int) -> int:
    """The offset just past the sub-blocks starting at ``pos`` (their zero terminator included)."""
    for _ in range(len(data)):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            if pos > len(data):
                raise ContainerError("sub-blocks run past the end")
            return pos
    raise ContainerError("unterminated sub-blocks")


def _colour_table_size(packed: int) -> int:
    return 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0


def strip_gif(data: bytes) -> bytes:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise ContainerError("no GIF header")
    pos = 13 + _colour_table_size(data[10])
    parts: list[bytes] = [data[:pos]]
    while len(parts) < MAX_PARTS:
        block = data[pos]
        if block == _GIF_TRAILER:
            parts.append(b"\x3b")  # anything after the trailer is dropped
            return b"".join(parts)
        if block == _GIF_IMAGE:
            start = pos
            pos += 10 + _colour_table_size(data[pos + 9])
            pos = _gif_sub_blocks_end(data, pos + 1)  # after the LZW minimum code size
            parts.append(data[start:pos])
        elif block == _GIF_EXTENSION:
            start, label = pos, data[pos + 1]
            pos = _gif_sub_blocks_end(data, pos + 2)
            identifier = data[start + 3 : start + 14] if data[start + 2] == 11 else b""
            if label == _GIF_COMMENT or (
                label == _GIF_APPLICATION and identifier not in _GIF_KEPT_APPLICATIONS
            ):
                continue
            parts.append(data[start:pos])
        else:
            raise ContainerError(f"unknown GIF block {block:#x} at {pos}")
    raise ContainerError("too many blocks")
