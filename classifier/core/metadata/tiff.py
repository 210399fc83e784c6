"""TIFF: image file directories of tags, the image data in strips or tiles. Only the tags that
say how to decode and show the pixels are written, with the data they point at."""

from __future__ import annotations

import struct

from classifier.core.metadata.common import MAX_PARTS, ContainerError

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
        raise ContainerError(f"unexpected TIFF type {kind}")
    return list(struct.unpack(f"{order}{count}{'H' if kind == _TIFF_SHORT else 'I'}", value))


def _read_tiff_ifd(data: bytes, order: str, offset: int) -> tuple[dict[int, _TiffEntry], int]:
    (count,) = struct.unpack_from(f"{order}H", data, offset)
    entries: dict[int, _TiffEntry] = {}
    for index in range(count):
        tag, kind, number, inline = struct.unpack_from(f"{order}HHI4s", data, offset + 2 + 12 * index)
        if tag not in _TIFF_KEPT_TAGS:
            continue
        if kind not in _TIFF_TYPE_SIZES:
            raise ContainerError(f"unknown TIFF type {kind} for tag {tag}")
        size = _TIFF_TYPE_SIZES[kind] * number
        if size <= 4:
            value = inline[:size]
        else:
            (at,) = struct.unpack(f"{order}I", inline)
            value = data[at : at + size]
            if len(value) != size:
                raise ContainerError(f"tag {tag} runs past the end")
        entries[tag] = (kind, number, value)
    (next_offset,) = struct.unpack_from(f"{order}I", data, offset + 2 + 12 * count)
    return entries, next_offset


def strip_tiff(data: bytes) -> bytes:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or struct.unpack_from(f"{order}H", data, 2)[0] != 42:
        raise ContainerError("not a classic TIFF file")
    pages: list[dict[int, _TiffEntry]] = []
    seen: set[int] = set()
    entries_left = MAX_PARTS  # IFDs may overlap: bound the entries read, not only the IFDs
    (offset,) = struct.unpack_from(f"{order}I", data, 4)
    while offset:
        entries_left -= struct.unpack_from(f"{order}H", data, offset)[0] + 1
        if offset in seen or entries_left < 0:
            raise ContainerError("IFD loop, or too many entries")
        seen.add(offset)
        entries, offset = _read_tiff_ifd(data, order, offset)
        if _TIFF_COMPRESSION in entries and _tiff_numbers(order, entries[_TIFF_COMPRESSION]) == [
            _TIFF_OLD_JPEG
        ]:
            raise ContainerError("old-style JPEG compression points into the file elsewhere")
        pages.append(entries)
    if not pages:
        raise ContainerError("no IFD")
    return _write_tiff(data, order, pages)


def _write_tiff(data: bytes, order: str, pages: list[dict[int, _TiffEntry]]) -> bytes:
    out = bytearray(data[:4] + b"\0\0\0\0")
    # Each part is copied once per reference, and IFDs may all point at the same bytes, so a
    # small file could be written out many times its size. Written whole, a file needs its
    # own size and some padding; more means bytes referenced again and again.
    limit = 2 * len(data) + 4096

    def room_for(size: int) -> None:
        if len(out) + size > limit:
            raise ContainerError("the IFDs refer to the same bytes more than once")

    link_at = 4  # where the offset of the next IFD goes
    for entries in pages:
        for offsets_tag, counts_tag in _TIFF_DATA_TAGS.items():
            if offsets_tag not in entries:
                continue
            if counts_tag not in entries:
                raise ContainerError(f"tag {offsets_tag} without {counts_tag}")
            offsets = _tiff_numbers(order, entries[offsets_tag])
            counts = _tiff_numbers(order, entries[counts_tag])
            if len(offsets) != len(counts):
                raise ContainerError("strip offsets and byte counts differ in number")
            moved = []
            for at, size in zip(offsets, counts, strict=True):
                if at + size > len(data):
                    raise ContainerError("image data runs past the end")
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
