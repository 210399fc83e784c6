"""What a job is made of: archive members, plain files and an optional catalogue CSV.

A .zip is checked as a whole before any member is read: its size, then its central
directory's entry count and size (from the end records, before zipfile builds a list of
them), the size it would expand to and its compression ratio (zip bombs), and every
member's name (absolute paths, "..", links), encryption and compression method. Those
refuse the whole archive. A member that is itself an archive, larger than the per-file
upload limit, or whose compressed data turns out to be corrupt, is kept as a failed member
with its reason, so the rest of the job goes on. Images are checked later, by the worker,
through the same validation as an upload. Member paths are cleaned as upload file names
are (bidi overrides and zero-width characters removed).
"""

from __future__ import annotations

import contextlib
import csv
import io
import lzma
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings

from classifier.core.exceptions import JobInputError, MemberUnreadableError
from classifier.predictions.cutouts import PositionError, parse_position
from classifier.predictions.filenames import sanitise_filename

NESTED_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")
CATALOGUE_SUFFIX = ".csv"
CATALOGUE_FILE_COLUMN = "file"
# A catalogue without files is a list of positions in these columns (degrees; any case).
POSITION_COLUMNS = ("ra", "dec")
MAX_CATALOGUE_BYTES = 64 * 1024 * 1024
MAX_CATALOGUE_COLUMNS = 32
MAX_COLUMN_NAME_LENGTH = 64
MAX_CELL_LENGTH = 200
# One row of a catalogue, header included: far more than MAX_CATALOGUE_COLUMNS names or cells
# need, far less than the 63 MB row of commas that became a list of 31 million strings
# (606 MB), or the header of them that took 26 s and 1.1 GB and was accepted.
MAX_RECORD_CHARS = 64 * 1024
MAX_RECORD_CELLS = 4 * (MAX_CATALOGUE_COLUMNS + 1)
# Removed from cells (PostgreSQL's JSON refuses it), so it can join a row's cells.
_CELL_SEPARATOR = "\0"
# At most 4 bytes a character: the (job, path) index stays under PostgreSQL's btree row limit.
MAX_MEMBER_PATH_LENGTH = 500
# Ratios are checked only above this size: small files are harmless whatever their ratio.
RATIO_CHECK_MIN_BYTES = 1024 * 1024
# Folders that archivers add beside the real files (macOS resource forks).
_IGNORED_PREFIXES = ("__MACOSX/",)
NESTED_ARCHIVE_REASON = "nested archives are not expanded; send their files in the outer archive"
_DRIVE = re.compile(r"^[A-Za-z]:")
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
_ENCRYPTED = 0x1  # general purpose flag bit 0: traditional PKWARE or WinZip AES encryption
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_METHOD_NAMES = {6: "Implode", 9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES"}
# What reading a damaged member raises: zipfile's CRC and header checks, each decompressor's
# error (bz2's is an OSError), a stream cut short, and an encrypted local header.
_DAMAGED_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
)


@dataclass
class MemberInput:
    """One file of a job: its path inside the submission, and a way to read it.

    ``error`` is set when the file is refused before classification (it is recorded as a
    failed member with that reason and never read).
    """

    path: str
    size: int
    opener: object = None  # a callable returning a binary stream, unless error is set
    error: str = ""
    # A catalogue row whose cutout the worker fetches (docs/positions.md): nothing to read.
    by_position: bool = False

    def read(self) -> bytes:
        """The bytes; raises MemberUnreadableError when they cannot be read."""
        try:
            with self.opener() as stream:  # type: ignore[operator]
                # Never more than the size announced and checked against the limits.
                return stream.read(self.size + 1)
        except _DAMAGED_MEMBER_ERRORS as exc:
            raise MemberUnreadableError(f"the file is corrupt or could not be read: {exc}"[:500]) from exc


@dataclass
class Catalogue:
    """The astronomer's table: its extra columns, and one row per file path."""

    columns: list[str]
    # A row's values in the order of columns, joined into one string: a job's worth of rows
    # then costs about the CSV's own size, where a dict (or tuple) of strings a row cost 5-8x.
    rows: dict[str, str] = field(default_factory=dict)

    def row_for(self, path: str, *, basenames: dict[str, int]) -> dict[str, str]:
        """The row of a member: by its full path, else by its file name when that is unique."""
        row = self.rows.get(path)
        if row is None:
            name = PurePosixPath(path).name
            if basenames.get(name) == 1:
                row = self.rows.get(name)
        if row is None or not self.columns:
            return {}
        return dict(zip(self.columns, row.split(_CELL_SEPARATOR), strict=True))


def is_nested_archive(path: str, head: bytes = b"") -> bool:
    return path.lower().endswith(NESTED_ARCHIVE_SUFFIXES) or head.startswith(_ARCHIVE_MAGIC)


def _path_parts(raw: str) -> list[str]:
    return [part for part in raw.replace("\\", "/").split("/") if part not in ("", ".")]


def _clean_path(parts: Sequence[str]) -> str:
    # Each part as an upload's file name: NFC, no bidi overrides, zero-width or other
    # invisible characters, at most 255 characters.
    return "/".join(sanitise_filename(part) for part in parts)


def check_member_path(raw: str) -> str:
    """The member's path, cleaned, if it is a safe relative path; raises JobInputError otherwise."""
    if any(unicodedata.category(ch) == "Cc" for ch in raw):
        raise JobInputError(f"the archive member {raw!r} has control characters in its name")
    path = raw.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise JobInputError(f"the archive member {raw!r} has an absolute path")
    parts = _path_parts(path)
    if ".." in parts:
        raise JobInputError(f"the archive member {raw!r} points outside the archive ('..')")
    joined = "/".join(parts)
    if len(joined) > MAX_MEMBER_PATH_LENGTH:
        raise JobInputError(
            f"the archive member path {joined[:60]!r}… is longer than {MAX_MEMBER_PATH_LENGTH}"
        )
    clean = _clean_path(parts)
    if _DRIVE.match(clean):
        # A drive letter that an invisible character hid.
        raise JobInputError(f"the archive member {raw!r} has an absolute path")
    return clean


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def read_zip(archive: IO[bytes], *, archive_size: int) -> tuple[list[MemberInput], Catalogue | None]:
    """The members of a .zip and its catalogue CSV, after every whole-archive check."""
    if archive_size > settings.JOB_MAX_ARCHIVE_BYTES:
        raise JobInputError(
            f"the archive is {archive_size:,} bytes, more than the limit of "
            f"{settings.JOB_MAX_ARCHIVE_BYTES:,} bytes",
            too_large=True,
        )
    _check_central_directory(archive)
    try:
        zf = zipfile.ZipFile(archive)
        infos = zf.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
    ) as exc:
        raise JobInputError(f"not a readable .zip archive: {exc}") from exc
    files = _checked_files(infos, archive_size=archive_size)

    catalogues = [item for item in files if item[0].filename.lower().endswith(CATALOGUE_SUFFIX)]
    if len(catalogues) > 1:
        names = ", ".join(info.filename for info, _ in catalogues[:5])
        raise JobInputError(f"the archive has more than one catalogue CSV ({names}); send one")
    catalogue = None
    if catalogues:
        info = catalogues[0][0]
        if info.file_size > MAX_CATALOGUE_BYTES:
            raise JobInputError(
                f"the catalogue {info.filename!r} is larger than {MAX_CATALOGUE_BYTES:,} bytes",
                too_large=True,
            )
        try:
            with zf.open(info) as stream:
                catalogue = read_catalogue(stream, name=info.filename)
        except _DAMAGED_MEMBER_ERRORS as exc:
            raise JobInputError(f"the catalogue {info.filename!r} is unreadable: {exc}") from exc
        files.remove(catalogues[0])

    members = [
        MemberInput(path=path, size=info.file_size, opener=lambda info=info: zf.open(info))
        for info, path in files
    ]
    for member in members:
        member.error = _member_refusal(member.path, member.size)
    return members, catalogue


def _check_central_directory(archive: IO[bytes]) -> None:
    """Refuse an archive whose central directory has more entries, or bytes, than a job may
    have, reading only its end records and walking its records' lengths (nothing is kept)."""
    declared, size, start = _central_directory(archive)
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
        _count_records(archive, start=start, size=size, limit=max_entries) > max_entries
    )
    if too_many:
        raise JobInputError(
            f"the archive lists more than {max_entries:,} entries (files, folders and __MACOSX copies), "
            f"the limit for {settings.JOB_MAX_MEMBERS:,} files",
            too_large=True,
        )


def _central_directory(archive: IO[bytes]) -> tuple[int, int, int]:
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


def _count_records(archive: IO[bytes], *, start: int, size: int, limit: int) -> int:
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


def _checked_files(infos: list[zipfile.ZipInfo], *, archive_size: int) -> list[tuple[zipfile.ZipInfo, str]]:
    """The archive's files with their cleaned paths, once no member is a link, escapes it, is
    encrypted or compressed in a way zipfile cannot read, and no limit is passed."""
    files: list[tuple[zipfile.ZipInfo, str]] = []
    for info in infos:
        if _is_link(info):
            raise JobInputError(f"the archive member {info.filename!r} is a link; links are not accepted")
        path = check_member_path(info.filename)
        if info.is_dir() or not path or path.startswith(_IGNORED_PREFIXES):
            continue
        if info.flag_bits & _ENCRYPTED:
            raise JobInputError(
                f"the archive member {info.filename!r} is encrypted; send an archive without a password"
            )
        if info.compress_type not in _READABLE_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise JobInputError(
                f"the archive member {info.filename!r} is compressed with {method}, which cannot be "
                "read; use Deflate (zip's default) or no compression"
            )
        files.append((info, path))
        if len(files) > settings.JOB_MAX_MEMBERS:
            raise JobInputError(
                f"the archive has more than {settings.JOB_MAX_MEMBERS:,} files, the limit", too_large=True
            )
    # Sizes from the headers: reading never goes past them, so a lying header cannot expand further.
    expanded = sum(info.file_size for info, _ in files)
    if expanded > settings.JOB_MAX_UNCOMPRESSED_BYTES:
        raise JobInputError(
            f"the archive would expand to {expanded:,} bytes, more than the limit of "
            f"{settings.JOB_MAX_UNCOMPRESSED_BYTES:,} bytes",
            too_large=True,
        )
    ratio = settings.JOB_MAX_COMPRESSION_RATIO
    for info, _ in files:
        if info.file_size >= RATIO_CHECK_MIN_BYTES and info.file_size > ratio * max(info.compress_size, 1):
            raise JobInputError(
                f"the archive member {info.filename!r} is compressed more than {ratio}:1 "
                "(a zip bomb?); refused"
            )
    if expanded >= RATIO_CHECK_MIN_BYTES and expanded > ratio * max(archive_size, 1):
        raise JobInputError(f"the archive expands more than {ratio}:1 (a zip bomb?); refused")
    return files


def _member_refusal(path: str, size: int) -> str:
    if is_nested_archive(path):
        return NESTED_ARCHIVE_REASON
    if size > settings.MAX_UPLOAD_BYTES:
        return f"the file is larger than the limit of {settings.MAX_UPLOAD_BYTES:,} bytes"
    return ""


class _CatalogueTooLargeError(Exception):
    """Raised inside the CSV reader's stream; read_catalogue turns it into a JobInputError."""


class _BoundedReader(io.RawIOBase):
    """A binary stream that raises _CatalogueTooLargeError once more than limit bytes were read."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise _CatalogueTooLargeError
        buffer[: len(data)] = data
        return len(data)


class _RecordLines:
    """The catalogue's lines for csv.reader, refusing a record (a row, its quoted line breaks
    included) of more than MAX_RECORD_CHARS: the reader turns a whole record into a list of
    strings before anything can count its cells."""

    def __init__(self, text: IO[str], name: str) -> None:
        self._text = text
        self._name = name
        self.chars = 0  # of the record being read; reset by _bounded_records

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_RECORD_CHARS + 1)
        if not line:
            raise StopIteration
        self.chars += len(line)
        if self.chars > MAX_RECORD_CHARS:
            raise _record_too_long(self._name)
        return line


def _record_too_long(name: str) -> JobInputError:
    return JobInputError(
        f"the catalogue {name!r} has a row longer than {MAX_RECORD_CHARS:,} characters or of more "
        f"than {MAX_RECORD_CELLS} cells"
    )


def _bounded_records(lines: _RecordLines, name: str) -> Iterator[list[str]]:
    for record in csv.reader(lines):
        lines.chars = 0
        if len(record) > MAX_RECORD_CELLS:
            raise _record_too_long(name)
        yield record


@contextlib.contextmanager
def _catalogue_reader(stream: IO[bytes], name: str) -> Iterator[Iterator[list[str]]]:
    """A CSV reader over the catalogue, streamed and bounded by MAX_CATALOGUE_BYTES, each row
    by MAX_RECORD_CHARS and MAX_RECORD_CELLS; passing a bound, text that is not UTF-8 or CSV
    that does not parse is a JobInputError naming it."""
    text = io.TextIOWrapper(
        io.BufferedReader(_BoundedReader(stream, MAX_CATALOGUE_BYTES)), encoding="utf-8-sig", newline=""
    )
    try:
        yield _bounded_records(_RecordLines(text, name), name)
    except _CatalogueTooLargeError:
        raise JobInputError(
            f"the catalogue {name!r} is larger than {MAX_CATALOGUE_BYTES:,} bytes", too_large=True
        ) from None
    except UnicodeDecodeError as exc:
        raise JobInputError(f"the catalogue {name!r} is not UTF-8 text") from exc
    except csv.Error as exc:
        raise JobInputError(f"the catalogue {name!r} is not valid CSV: {exc}") from exc


def _check_columns(columns: Sequence[str], name: str) -> None:
    if len(columns) > MAX_CATALOGUE_COLUMNS or any(len(c) > MAX_COLUMN_NAME_LENGTH for c in columns):
        raise JobInputError(
            f"the catalogue {name!r} has more than {MAX_CATALOGUE_COLUMNS} columns or a column name "
            f"longer than {MAX_COLUMN_NAME_LENGTH} characters"
        )


def _clean_cell(text: str) -> str:
    # The separator joins a row's stored cells, so it cannot stand inside one.
    return text.replace(_CELL_SEPARATOR, "").strip()[:MAX_CELL_LENGTH]


def read_catalogue(stream: IO[bytes], *, name: str = "catalogue.csv") -> Catalogue:
    """Parse a catalogue CSV: a ``file`` column and any others (``id``, ``ra``, ``dec``, ...).

    Read as a stream, a row at a time, and refused as soon as it passes MAX_CATALOGUE_BYTES
    or has more rows than a job may have files: nothing is read whole.
    """
    max_rows = settings.JOB_MAX_MEMBERS
    rows: dict[str, str] = {}
    with _catalogue_reader(stream, name) as reader:
        header = [column.strip() for column in next(reader, [])]
        if CATALOGUE_FILE_COLUMN not in header:
            raise JobInputError(
                f"the catalogue {name!r} has no {CATALOGUE_FILE_COLUMN!r} column "
                f"(it has: {', '.join(header)[:200]})"
            )
        columns = [column for column in header if column and column != CATALOGUE_FILE_COLUMN]
        _check_columns(columns, name)
        key_at = header.index(CATALOGUE_FILE_COLUMN)
        value_at = [index for index, column in enumerate(header) if column in columns]
        for count, record in enumerate(reader, start=1):
            if count > max_rows:
                raise JobInputError(
                    f"the catalogue {name!r} has more than {max_rows:,} rows, the most files a job may have",
                    too_large=True,
                )
            cells = record + [""] * (len(header) - len(record))
            # Cleaned as member paths are, so a row still finds its member.
            parts = _path_parts(cells[key_at].strip())
            if parts and ".." not in parts:
                rows[_clean_path(parts)] = _CELL_SEPARATOR.join(
                    _clean_cell(cells[index]) for index in value_at
                )
    return Catalogue(columns=columns, rows=rows)


def position_columns(columns: Sequence[str]) -> tuple[str, str] | None:
    """The catalogue's ra and dec columns (matched in any case), or None if it lacks one."""
    found = []
    for wanted in POSITION_COLUMNS:
        matches = [column for column in columns if column.strip().lower() == wanted]
        if len(matches) > 1:
            raise JobInputError(f"the catalogue has more than one {wanted!r} column: {', '.join(matches)}")
        if not matches:
            return None
        found.append(matches[0])
    return found[0], found[1]


def read_position_catalogue(
    stream: IO[bytes], *, name: str = "catalogue.csv"
) -> tuple[list[MemberInput], Catalogue]:
    """A catalogue of positions: one member per row, named "row N", whose cutout the worker
    fetches. Every column is kept; a row whose ra or dec is not a position is a failed
    member with the reason. Streamed and bounded as read_catalogue is."""
    max_rows = settings.JOB_MAX_MEMBERS
    members: list[MemberInput] = []
    rows: dict[str, str] = {}
    with _catalogue_reader(stream, name) as reader:
        header = [column.strip() for column in next(reader, [])]
        columns = [column for column in header if column]
        _check_columns(columns, name)
        if len(set(columns)) != len(columns):
            raise JobInputError(f"the catalogue {name!r} names a column twice")
        found = position_columns(columns)
        if found is None:
            raise JobInputError(
                f"the catalogue {name!r} has no 'ra' and 'dec' columns (it has: {', '.join(columns)[:200]}); "
                "send positions in degrees, or images or a .zip with the catalogue"
            )
        value_at = [index for index, column in enumerate(header) if column]
        ra_at, dec_at = (columns.index(column) for column in found)
        for number, record in enumerate(reader, start=1):
            if not any(cell.strip() for cell in record):
                continue  # a blank line
            if len(members) >= max_rows:
                raise JobInputError(
                    f"the catalogue {name!r} has more than {max_rows:,} rows, the most a job may have",
                    too_large=True,
                )
            cells = record + [""] * (len(header) - len(record))
            values = [_clean_cell(cells[index]) for index in value_at]
            path = f"row {number}"
            error = ""
            try:
                parse_position(values[ra_at], values[dec_at])
            except PositionError as exc:
                error = exc.reason
            rows[path] = _CELL_SEPARATOR.join(values)
            members.append(MemberInput(path=path, size=0, error=error, by_position=True))
    if not members:
        raise JobInputError(f"the catalogue {name!r} has no positions")
    return members, Catalogue(columns=columns, rows=rows)


def submission_from_positions(entries: Sequence[tuple[str, Any]], *, name: str) -> Submission:
    """A job from positions typed on the page: (the text as typed, its parsed Position) each.

    The catalogue keeps what was typed and the position in degrees, as a CSV of positions would.
    """
    rows: dict[str, str] = {}
    members: list[MemberInput] = []
    for number, (text, position) in enumerate(entries, start=1):
        path = f"row {number}"
        rows[path] = _CELL_SEPARATOR.join([_clean_cell(text), f"{position.ra:.6f}", f"{position.dec:.6f}"])
        members.append(MemberInput(path=path, size=0, by_position=True))
    return Submission(
        name=name, members=members, catalogue=Catalogue(columns=["position", "ra", "dec"], rows=rows)
    )


def file_members(uploads: Iterable[tuple[str, int, object]]) -> Iterator[MemberInput]:
    """Plain files (name, size, opener) as members, with the same per-file checks."""
    for name, size, opener in uploads:
        yield MemberInput(path=name, size=size, opener=opener, error=_member_refusal(name, size))


@dataclass
class Submission:
    """Everything a job is made from, before it is staged.

    ``skipped`` names the links found in folders, which are never followed.
    """

    name: str
    members: list[MemberInput]
    catalogue: Catalogue | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def by_position(self) -> bool:
        return any(member.by_position for member in self.members)


def _reopened(upload: IO[bytes]) -> IO[bytes]:
    upload.seek(0)
    return contextlib.nullcontext(upload)  # type: ignore[return-value]


def submission_from_uploads(
    *, archive: Any = None, images: Sequence[Any] = (), catalogue: Any = None
) -> Submission:
    """A submission from uploaded files: one .zip, or image files, and a catalogue CSV beside them."""
    if archive is not None and images:
        raise JobInputError("send either one archive or image files, not both")
    if archive is None and not images and catalogue is None:
        raise JobInputError(
            "send a .zip archive in the 'archive' field, images in 'image' fields, "
            "or a catalogue CSV of positions (ra and dec columns) in the 'catalogue' field"
        )
    table = None
    if catalogue is not None:
        if catalogue.size > MAX_CATALOGUE_BYTES:
            raise JobInputError(f"the catalogue is larger than {MAX_CATALOGUE_BYTES:,} bytes", too_large=True)
        catalogue.seek(0)
        if archive is None and not images:
            name = sanitise_filename(catalogue.name or "catalogue.csv")
            members, table = read_position_catalogue(catalogue, name=name)
            return Submission(name=name, members=members, catalogue=table)
        table = read_catalogue(catalogue, name=catalogue.name or "catalogue.csv")
    if archive is not None:
        members, inner = read_zip(archive, archive_size=archive.size)
        if inner is not None and table is not None:
            raise JobInputError("the archive has a catalogue CSV and another was sent beside it; send one")
        name = archive.name or "archive.zip"
        if not members:
            raise JobInputError(f"the archive {name!r} has no files to classify")
        return Submission(name=name, members=members, catalogue=table or inner)
    entries = [
        (sanitise_filename(upload.name), upload.size, lambda u=upload: _reopened(u)) for upload in images
    ]
    return Submission(name=entries[0][0], members=list(file_members(entries)), catalogue=table)


def submission_from_paths(paths: Sequence[str]) -> Submission:
    """A submission from the command line: files, folders (recursively) or one .zip, and a CSV.

    Links inside folders are skipped and listed in ``skipped``, like links in archives,
    which are refused: a folder's job holds only the folder's own files.
    """
    skipped: list[str] = []
    files, archives, catalogues = _collect_paths(paths, skipped=skipped)
    if len(catalogues) > 1:
        raise JobInputError("more than one catalogue CSV was given")
    table = None
    if catalogues and not files and not archives:
        # A catalogue alone is a list of positions (ra and dec columns).
        with catalogues[0].open("rb") as stream:
            members, table = read_position_catalogue(stream, name=catalogues[0].name)
        return Submission(name=catalogues[0].name, members=members, catalogue=table, skipped=skipped)
    if catalogues:
        with catalogues[0].open("rb") as stream:
            table = read_catalogue(stream, name=catalogues[0].name)
    if archives:
        if len(archives) > 1 or files:
            raise JobInputError("give one .zip archive, or files and folders, not both")
        handle = archives[0].open("rb")
        members, inner = read_zip(handle, archive_size=archives[0].stat().st_size)
        if not members:
            raise JobInputError(f"the archive {archives[0].name!r} has no files to classify")
        return Submission(name=archives[0].name, members=members, catalogue=table or inner, skipped=skipped)
    if not files:
        links = f" ({len(skipped)} symbolic link{'s' * (len(skipped) != 1)} skipped)" if skipped else ""
        raise JobInputError(f"no files to classify{links}")
    entries = [(name, found.stat().st_size, lambda f=found: _open_no_follow(f)) for name, found in files]
    return Submission(
        name=Path(paths[0]).name, members=list(file_members(entries)), catalogue=table, skipped=skipped
    )


def _open_no_follow(path: Path) -> IO[bytes]:
    # A file swapped for a link after the folder was listed is not followed either.
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def _folder_files(folder: Path, *, skipped: list[str]) -> list[tuple[str, Path]]:
    """The regular files under folder, by their cleaned relative paths. Links, to files or
    to folders, are added to skipped and never followed."""
    found: list[Path] = []
    for root, folders, names in os.walk(folder):  # never enters a linked folder
        base = Path(root)
        for name in folders:
            if (base / name).is_symlink():
                skipped.append((base / name).relative_to(folder).as_posix())
        for name in names:
            entry = base / name
            if entry.is_symlink():
                skipped.append(entry.relative_to(folder).as_posix())
            elif entry.is_file():
                found.append(entry)
    return [(_clean_path(_path_parts(p.relative_to(folder).as_posix())), p) for p in sorted(found)]


def _collect_paths(
    paths: Sequence[str], *, skipped: list[str]
) -> tuple[list[tuple[str, Path]], list[Path], list[Path]]:
    files: list[tuple[str, Path]] = []
    archives: list[Path] = []
    catalogues: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(_folder_files(path, skipped=skipped))
        elif not path.is_file():
            raise JobInputError(f"{raw}: no such file or directory")
        elif path.suffix.lower() == ".zip":
            archives.append(path)
        elif path.suffix.lower() == CATALOGUE_SUFFIX:
            catalogues.append(path)
        else:
            files.append((sanitise_filename(path.name), path))
    return files, archives, catalogues
