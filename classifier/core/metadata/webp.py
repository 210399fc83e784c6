"""WebP: a RIFF container of chunks. EXIF and XMP go, and the VP8X flags that announce them."""

from __future__ import annotations

from classifier.core.metadata.common import MAX_PARTS, ContainerError, orientation_exif, orientation_of

_WEBP_KEPT = frozenset({b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"})
_VP8X_EXIF_FLAG, _VP8X_XMP_FLAG = 0x08, 0x04


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "little") + payload + (b"\0" if len(payload) % 2 else b"")


def strip_webp(data: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ContainerError("not a RIFF WEBP file")
    end_of_riff = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    chunks: list[tuple[bytes, bytes]] = []
    orientation = None
    exif_seen = False
    pos = 12
    while pos + 8 <= end_of_riff:
        if len(chunks) >= MAX_PARTS:
            raise ContainerError("too many chunks")
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        payload = data[pos + 8 : pos + 8 + size]
        if len(payload) != size:
            raise ContainerError(f"chunk {kind!r} runs past the end")
        pos += 8 + size + size % 2
        if kind == b"EXIF" and not exif_seen:
            exif_seen = True
            orientation = orientation_of(payload)
        if kind in _WEBP_KEPT:
            chunks.append((kind, payload))
    if not chunks:
        raise ContainerError("no image chunk")
    if chunks[0][0] == b"VP8X":
        # Decoders read an EXIF chunk only when VP8X announces it: an unannounced orientation
        # does not turn the original, so the copy must not announce one either.
        if not chunks[0][1][0] & _VP8X_EXIF_FLAG:
            orientation = None
        flags = chunks[0][1][0] & ~(_VP8X_EXIF_FLAG | _VP8X_XMP_FLAG)
        if orientation:
            flags |= _VP8X_EXIF_FLAG
            # After the image data, where the WebP specification puts EXIF.
            chunks.append((b"EXIF", orientation_exif(orientation)[6:]))
        chunks[0] = (b"VP8X", bytes((flags,)) + chunks[0][1][1:])
    body = b"WEBP" + b"".join(_riff_chunk(kind, payload) for kind, payload in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body
