"""A .zip's central directory, sized from its end records before zipfile reads it.

zipfile holds the whole central directory, and an object per entry, in memory: an archive
whose directory has more entries, or bytes, than a job may have is refused before zipfile
builds its list, reading only the end records and walking the records' lengths.
"""

from __future__ import annotations

import os
import struct
from typing import IO

from django.conf import settings

from classifier.core.exceptions import JobInputError

# zipfile holds the whole central directory, and an object per entry, in memory: both are
# bounded by the files a job may have, before zipfile reads them. Entries: each file and a
# __MACOSX copy of it, and folders. Bytes: a 46-byte record, a path and its extra fields.
ENTRIES_PER_MEMBER = 2
FOLDER_ENTRIES = 10_000
DIRECTORY_BYTES_PER_MEMBER = 512
# The end records (APPNOTE 4.3.14-4.3.16), and the part of a directory record that gives
# its length: the signature and the lengths of its name, extra field and comment.
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_MAX_TAIL = _EOCD.size + (1 << 16)  # the record and the longest archive comment
_RECORD = struct.Struct("<4s24x3H")
_RECORD_SIZE = 46
_RECORD_SIGNATURE = b"PK\x01\x02"
_DIRECTORY_BLOCK = 1024 * 1024


def check_central_directory(archive: IO[bytes]) -> None:
    """Refuse an archive whose central directory has more entries, or bytes, than a job may
    have, reading only its end records and walking its records' lengths (nothing is kept)."""
    declared, size, start = central_directory(archive)
    max_entries = ENTRIES_PER_MEMBER * settings.JOB_MAX_MEMBERS + FOLDER_ENTRIES
    max_bytes = DIRECTORY_BYTES_PER_MEMBER * settings.JOB_MAX_MEMBERS
    if size > max_bytes:
        raise JobInputError(
            f"the archive's file list is {size:,} bytes, more than the limit of {max_bytes:,} bytes",
            too_large=True,
        )
    # zipfile reads records until the directory's bytes are used up, whatever the count in
    # the end record says: the records are counted the same way.
    too_many = declared > max_entries or (
        count_records(archive, start=start, size=size, limit=max_entries) > max_entries
    )
    if too_many:
        raise JobInputError(
            f"the archive lists more than {max_entries:,} entries (files, folders and __MACOSX copies), "
            f"the limit for {settings.JOB_MAX_MEMBERS:,} files",
            too_large=True,
        )


def central_directory(archive: IO[bytes]) -> tuple[int, int, int]:
    """The central directory's entry count (as declared), size and offset, found as zipfile
    finds them (_EndRecData): the end record in the last 22 bytes, else the last one in the
    final 64 KiB, and the ZIP64 end record when its locator comes just before."""
    end = archive.seek(0, os.SEEK_END)
    if end < _EOCD.size:
        raise JobInputError("not a readable .zip archive: File is not a zip file")
    tail_start = max(end - _MAX_TAIL, 0)
    archive.seek(tail_start)
    tail = archive.read(end - tail_start)
    last = tail[-_EOCD.size :]
    at = len(tail) - _EOCD.size
    if not (last.startswith(_EOCD_SIGNATURE) and last.endswith(b"\0\0")):
        at = tail.rfind(_EOCD_SIGNATURE)
        if at < 0 or at + _EOCD.size > len(tail):
            raise JobInputError("not a readable .zip archive: File is not a zip file")
    _, _, _, _, declared, size, _, _ = _EOCD.unpack_from(tail, at)
    record = tail_start + at
    locator_at = record - _ZIP64_LOCATOR.size
    zip64_at = locator_at - _ZIP64_EOCD.size
    if zip64_at >= 0:
        archive.seek(zip64_at)
        zip64 = archive.read(_ZIP64_EOCD.size + _ZIP64_LOCATOR.size)
        signature, disk, _, disks = _ZIP64_LOCATOR.unpack_from(zip64, _ZIP64_EOCD.size)
        if signature == _ZIP64_LOCATOR_SIGNATURE:
            if disk != 0 or disks > 1:
                raise JobInputError("not a readable .zip archive: it spans several disks")
            fields = _ZIP64_EOCD.unpack_from(zip64)
            if fields[0] == _ZIP64_EOCD_SIGNATURE:
                declared, size, record = fields[7], fields[8], zip64_at
    # Where zipfile starts reading: just before the end records, whatever the stated offset.
    return declared, size, max(record - size, 0)


def count_records(archive: IO[bytes], *, start: int, size: int, limit: int) -> int:
    """The records in the directory's size bytes from start, counted up to limit + 1.

    Stops early at a truncated or unsigned record: zipfile refuses the archive there.
    """
    count = offset = 0
    block, block_start = b"", 0
    while offset < size and count <= limit:
        if offset + _RECORD_SIZE > block_start + len(block):
            archive.seek(start + offset)
            block, block_start = archive.read(min(_DIRECTORY_BLOCK, size - offset)), offset
            if len(block) < _RECORD_SIZE:
                break
        signature, name, extra, comment = _RECORD.unpack_from(block, offset - block_start)
        if signature != _RECORD_SIGNATURE:
            break
        offset += _RECORD_SIZE + name + extra + comment
        count += 1
    return count
