"""The stored copy of an upload, without the metadata that can identify a person.

Photos carry EXIF (GPS position, camera serial, owner's name), XMP and IPTC. The
stored file is rewritten at the container level: the compressed image data is
copied byte for byte, so the pixels decode exactly as the upload's did, and only
the metadata blocks are left out. The EXIF orientation is the one piece kept (as an
orientation-only EXIF block), so the stored picture still displays upright.

A FITS file loses its personal and location header keywords (classifier.core.fits,
docs/fits.md).

No maintained library strips these six formats losslessly, hence this module. A
container it cannot walk (truncated, or a variant it does not know) is re-encoded
with Pillow instead: its first frame, losslessly, except a JPEG, which keeps its
quantisation tables.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections.abc import Callable, Iterator

from PIL import ExifTags, Image

from classifier.core import fits

logger = logging.getLogger(__name__)

ORIENTATION_TAG = ExifTags.Base.Orientation
# A sane file has a handful; this bounds the work on a hostile one.
_MAX_PARTS = 100_000
_METADATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError, struct.error)


class _ContainerError(ValueError):
    """The bytes are not a container this module can rewrite safely."""


def strip_metadata(data: bytes, image_format: str) -> bytes:
    """A copy of ``data`` (an image in Pillow's ``image_format``) without EXIF, XMP, IPTC,
    comments and text chunks; its pixels decode identically and its orientation is kept."""
    if image_format == "FITS":
        # Header keywords that name a person or a place go; the data units stay byte for byte.
        return fits.strip_private_keywords(data)
    rewrite = _REWRITERS.get(image_format)
    if rewrite is None:
        # BMP has no metadata blocks; anything else was refused before it got here.
        return data
    try:
        return rewrite(data)
    except (ValueError, struct.error, IndexError):  # _ContainerError is a ValueError
        logger.info("re-encoding a %s upload to strip its metadata: unusual container", image_format)
        return _reencode(data, image_format)


def _turning(value: object) -> int | None:
    """An EXIF orientation value that turns or flips the picture (2 to 8), else None."""
    return value if isinstance(value, int) and 2 <= value <= 8 else None


def _orientation_of(exif_block: bytes) -> int | None:
    """The orientation in an EXIF block ("Exif\\0\\0" prefix or bare TIFF), if it turns the picture."""
    exif = Image.Exif()
    try:
        exif.load(exif_block)
        return _turning(exif.get(ORIENTATION_TAG))
    except _METADATA_ERRORS:
        return None


def _orientation_exif(orientation: int) -> bytes:
    """An EXIF block holding the orientation and nothing else, with the "Exif\\0\\0" prefix."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()


# --- JPEG: a sequence of marker segments, then entropy-coded scans ---------------------

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
    for _ in range(_MAX_PARTS):
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
            raise _ContainerError(f"bad segment length at {pos}")
        if marker == _SOS:
            end = _scan_end(data, end)
        yield marker, data[pos:end]
        pos = end
    raise _ContainerError("too many segments")


def _strip_jpeg(data: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise _ContainerError("no SOI marker")
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
            orientation = _orientation_of(payload)
        kept = _kept_jpeg_segment(marker, payload)
        if kept is not None:
            parts.append(bytes((0xFF, marker)) + (len(kept) + 2).to_bytes(2, "big") + kept)
    if orientation:
        # After SOI and JFIF's APP0, where readers look for Exif.
        at = 2 if parts[1][1] == _APP0 else 1
        exif = _orientation_exif(orientation)
        parts.insert(at, b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif)
    return b"".join(parts)


# --- PNG: a signature, then length-type-data-CRC chunks ----------------------------------

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


def _strip_png(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise _ContainerError("no PNG signature")
    parts: list[bytes] = [_PNG_SIGNATURE]
    orientation = None
    exif_seen = False
    first_idat = None
    pos = len(_PNG_SIGNATURE)
    while True:
        if len(parts) >= _MAX_PARTS or pos + 12 > len(data):
            raise _ContainerError("no IEND chunk")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise _ContainerError(f"chunk {kind!r} runs past the end")
        if kind == b"eXIf" and not exif_seen:
            exif_seen = True
            orientation = _orientation_of(data[pos + 8 : pos + 8 + length])
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
            raise _ContainerError("no IDAT chunk")
        # Before the image data, where the PNG specification puts eXIf.
        parts.insert(first_idat, _png_chunk(b"eXIf", _orientation_exif(orientation)[6:]))
    return b"".join(parts)


# --- WebP: a RIFF container of chunks ----------------------------------------------------

_WEBP_KEPT = frozenset({b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"})
_VP8X_EXIF_FLAG, _VP8X_XMP_FLAG = 0x08, 0x04


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "little") + payload + (b"\0" if len(payload) % 2 else b"")


def _strip_webp(data: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _ContainerError("not a RIFF WEBP file")
    end_of_riff = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    chunks: list[tuple[bytes, bytes]] = []
    orientation = None
    exif_seen = False
    pos = 12
    while pos + 8 <= end_of_riff:
        if len(chunks) >= _MAX_PARTS:
            raise _ContainerError("too many chunks")
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        payload = data[pos + 8 : pos + 8 + size]
        if len(payload) != size:
            raise _ContainerError(f"chunk {kind!r} runs past the end")
        pos += 8 + size + size % 2
        if kind == b"EXIF" and not exif_seen:
            exif_seen = True
            orientation = _orientation_of(payload)
        if kind in _WEBP_KEPT:
            chunks.append((kind, payload))
    if not chunks:
        raise _ContainerError("no image chunk")
    if chunks[0][0] == b"VP8X":
        flags = chunks[0][1][0] & ~(_VP8X_EXIF_FLAG | _VP8X_XMP_FLAG)
        if orientation:
            flags |= _VP8X_EXIF_FLAG
            # After the image data, where the WebP specification puts EXIF.
            chunks.append((b"EXIF", _orientation_exif(orientation)[6:]))
        chunks[0] = (b"VP8X", bytes((flags,)) + chunks[0][1][1:])
    body = b"WEBP" + b"".join(_riff_chunk(kind, payload) for kind, payload in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


# --- GIF: blocks and extensions, each made of length-prefixed sub-blocks ----------------

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
                raise _ContainerError("sub-blocks run past the end")
            return pos
    raise _ContainerError("unterminated sub-blocks")


def _colour_table_size(packed: int) -> int:
    return 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0


def _strip_gif(data: bytes) -> bytes:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise _ContainerError("no GIF header")
    pos = 13 + _colour_table_size(data[10])
    parts: list[bytes] = [data[:pos]]
    while len(parts) < _MAX_PARTS:
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
            raise _ContainerError(f"unknown GIF block {block:#x} at {pos}")
    raise _ContainerError("too many blocks")


# --- TIFF: image file directories of tags; the image data lives in strips or tiles ------

# The tags that say how to decode and show the pixels. Everything else goes: EXIF, GPS
# and interoperability IFDs, XMP, IPTC, Photoshop resources, ImageDescription, Make,
# Model, Software, DateTime, Artist, HostComputer, Copyright, Windows XP tags, SubIFDs...
_TIFF_KEPT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 274, 277, 278, 279, 280, 281}
    | {282, 283, 284, 290, 291, 292, 293, 296, 297, 301, 317, 318, 319, 320, 321, 322, 323}
    | {324, 325, 332, 334, 336, 338, 339, 340, 341, 347, 529, 530, 531, 532, 34675}
)
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TIFF_SHORT, _TIFF_LONG = 3, 4
# Offsets of the image data, and their byte counts: strips, or tiles.
_TIFF_DATA_TAGS = {273: 279, 324: 325}
_TIFF_COMPRESSION, _TIFF_OLD_JPEG = 259, 6

_TiffEntry = tuple[int, int, bytes]  # type, count, value bytes


def _tiff_numbers(order: str, entry: _TiffEntry) -> list[int]:
    kind, count, value = entry
    if kind not in (_TIFF_SHORT, _TIFF_LONG):
        raise _ContainerError(f"unexpected TIFF type {kind}")
    return list(struct.unpack(f"{order}{count}{'H' if kind == _TIFF_SHORT else 'I'}", value))


def _read_tiff_ifd(data: bytes, order: str, offset: int) -> tuple[dict[int, _TiffEntry], int]:
    (count,) = struct.unpack_from(f"{order}H", data, offset)
    entries: dict[int, _TiffEntry] = {}
    for index in range(count):
        tag, kind, number, inline = struct.unpack_from(f"{order}HHI4s", data, offset + 2 + 12 * index)
        if tag not in _TIFF_KEPT_TAGS:
            continue
        if kind not in _TIFF_TYPE_SIZES:
            raise _ContainerError(f"unknown TIFF type {kind} for tag {tag}")
        size = _TIFF_TYPE_SIZES[kind] * number
        if size <= 4:
            value = inline[:size]
        else:
            (at,) = struct.unpack(f"{order}I", inline)
            value = data[at : at + size]
            if len(value) != size:
                raise _ContainerError(f"tag {tag} runs past the end")
        entries[tag] = (kind, number, value)
    (next_offset,) = struct.unpack_from(f"{order}I", data, offset + 2 + 12 * count)
    return entries, next_offset


def _strip_tiff(data: bytes) -> bytes:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or struct.unpack_from(f"{order}H", data, 2)[0] != 42:
        raise _ContainerError("not a classic TIFF file")
    pages: list[dict[int, _TiffEntry]] = []
    seen: set[int] = set()
    entries_left = _MAX_PARTS  # IFDs may overlap: bound the entries read, not only the IFDs
    (offset,) = struct.unpack_from(f"{order}I", data, 4)
    while offset:
        entries_left -= struct.unpack_from(f"{order}H", data, offset)[0] + 1
        if offset in seen or entries_left < 0:
            raise _ContainerError("IFD loop, or too many entries")
        seen.add(offset)
        entries, offset = _read_tiff_ifd(data, order, offset)
        if _TIFF_COMPRESSION in entries and _tiff_numbers(order, entries[_TIFF_COMPRESSION]) == [
            _TIFF_OLD_JPEG
        ]:
            raise _ContainerError("old-style JPEG compression points into the file elsewhere")
        pages.append(entries)
    if not pages:
        raise _ContainerError("no IFD")
    return _write_tiff(data, order, pages)


def _write_tiff(data: bytes, order: str, pages: list[dict[int, _TiffEntry]]) -> bytes:
    out = bytearray(data[:4] + b"\0\0\0\0")
    # Each part is copied once per reference, and IFDs may all point at the same bytes: a 4 MB
    # file of 50 IFDs sharing one strip became 200 MB (2,000 would be 8 GB). Written whole, a
    # file needs its own size and some padding; more means bytes referenced again and again.
    limit = 2 * len(data) + 4096

    def room_for(size: int) -> None:
        if len(out) + size > limit:
            raise _ContainerError("the IFDs refer to the same bytes more than once")

    link_at = 4  # where the offset of the next IFD goes
    for entries in pages:
        for offsets_tag, counts_tag in _TIFF_DATA_TAGS.items():
            if offsets_tag not in entries:
                continue
            if counts_tag not in entries:
                raise _ContainerError(f"tag {offsets_tag} without {counts_tag}")
            offsets = _tiff_numbers(order, entries[offsets_tag])
            counts = _tiff_numbers(order, entries[counts_tag])
            if len(offsets) != len(counts):
                raise _ContainerError("strip offsets and byte counts differ in number")
            moved = []
            for at, size in zip(offsets, counts, strict=True):
                if at + size > len(data):
                    raise _ContainerError("image data runs past the end")
                room_for(size)
                out += b"\0" * (len(out) % 2)  # TIFF keeps offsets on word boundaries
                moved.append(len(out))
                out += data[at : at + size]
            packed = struct.pack(f"{order}{len(moved)}I", *moved)
            entries[offsets_tag] = (_TIFF_LONG, len(moved), packed)
            entries[counts_tag] = (_TIFF_LONG, len(counts), struct.pack(f"{order}{len(counts)}I", *counts))
        fields = []
        for tag in sorted(entries):
            kind, count, value = entries[tag]
            if len(value) > 4:
                room_for(len(value))
                out += b"\0" * (len(out) % 2)
                inline = struct.pack(f"{order}I", len(out))
                out += value
            else:
                inline = value.ljust(4, b"\0")
            fields.append(struct.pack(f"{order}HHI", tag, kind, count) + inline)
        out += b"\0" * (len(out) % 2)
        struct.pack_into(f"{order}I", out, link_at, len(out))
        out += struct.pack(f"{order}H", len(fields)) + b"".join(fields)
        link_at = len(out)
        out += b"\0\0\0\0"
    return bytes(out)


# --- The fallback: decode and encode again with Pillow --------------------------------


# What a re-encoded image keeps of Pillow's info: how its frames are shown, nothing else.
_REENCODED_INFO = frozenset({"transparency", "background", "duration", "loop", "disposal", "blend", "dpi"})


def _reencode(data: bytes, image_format: str) -> bytes:
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
        orientation = _turning(tags.get(ORIENTATION_TAG))
        # Pillow writes some of a source's info back (a JPEG's or GIF's comment, XMP).
        image.info = {key: value for key, value in image.info.items() if key in _REENCODED_INFO}
        params: dict[str, object] = {}
        if icc_profile:
            params["icc_profile"] = icc_profile
        if orientation and image_format != "GIF":
            params["exif"] = _orientation_exif(orientation)
        if image_format == "JPEG":
            params |= {"quality": "keep", "subsampling": "keep"}
        if image_format == "WEBP":
            params |= {"lossless": True, "exact": True}
        if image_format == "TIFF":
            params["compression"] = "tiff_adobe_deflate"
        buffer = io.BytesIO()
        image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


_REWRITERS: dict[str, Callable[[bytes], bytes]] = {
    "JPEG": _strip_jpeg,
    "PNG": _strip_png,
    "WEBP": _strip_webp,
    "GIF": _strip_gif,
    "TIFF": _strip_tiff,
}
