"""Catalogue CSVs: the astronomer's table beside a job's files, or a list of positions.

Read as a stream, a row at a time, and refused as soon as one passes a bound (bytes,
columns, the characters or cells of a row, rows): nothing is read whole.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from django.conf import settings

from classifier.core.exceptions import JobInputError, PositionError
from classifier.core.positions import parse_position
from classifier.jobs.members import MemberInput, clean_path, path_parts

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
            parts = path_parts(cells[key_at].strip())
            if parts and ".." not in parts:
                rows[clean_path(parts)] = _CELL_SEPARATOR.join(
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


def catalogue_of_positions(entries: Sequence[tuple[str, Any]]) -> tuple[list[MemberInput], Catalogue]:
    """Positions typed on the page, (the text as typed, its parsed Position) each, as a
    catalogue of positions: it keeps what was typed and the position in degrees, as a CSV
    of positions would."""
    rows: dict[str, str] = {}
    members: list[MemberInput] = []
    for number, (text, position) in enumerate(entries, start=1):
        path = f"row {number}"
        rows[path] = _CELL_SEPARATOR.join([_clean_cell(text), f"{position.ra:.6f}", f"{position.dec:.6f}"])
        members.append(MemberInput(path=path, size=0, by_position=True))
    return members, Catalogue(columns=["position", "ra", "dec"], rows=rows)
