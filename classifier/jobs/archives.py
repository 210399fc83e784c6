"""What a job is made of: archive members, plain files and an optional catalogue CSV.

A .zip is checked as a whole before any member is read: its size, its member count, the
size it would expand to and its compression ratio (zip bombs), and every member's name
(absolute paths, "..", links). Those refuse the whole archive. A member that is itself an
archive, or larger than the per-file upload limit, is kept as a failed member with its
reason, so the rest of the job goes on. Images are checked later, by the worker, through
the same validation as an upload.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import stat
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings

from classifier.exceptions import ClassifierError

NESTED_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")
CATALOGUE_SUFFIX = ".csv"
CATALOGUE_FILE_COLUMN = "file"
MAX_CATALOGUE_BYTES = 64 * 1024 * 1024
MAX_CATALOGUE_COLUMNS = 32
MAX_COLUMN_NAME_LENGTH = 64
# At most 4 bytes a character: the (job, path) index stays under PostgreSQL's btree row limit.
MAX_MEMBER_PATH_LENGTH = 500
# Ratios are checked only above this size: small files are harmless whatever their ratio.
RATIO_CHECK_MIN_BYTES = 1024 * 1024
# Folders that archivers add beside the real files (macOS resource forks).
_IGNORED_PREFIXES = ("__MACOSX/",)
NESTED_ARCHIVE_REASON = "nested archives are not expanded; send their files in the outer archive"
_DRIVE = re.compile(r"^[A-Za-z]:")


class JobInputError(ClassifierError):
    """The submission was refused as a whole; nothing was saved.

    ``too_large`` marks a size limit (HTTP 413), anything else is a bad request (400).
    """

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        self.reason = reason
        self.too_large = too_large
        super().__init__(reason)


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

    def read(self) -> bytes:
        with self.opener() as stream:  # type: ignore[operator]
            # Never more than the size announced and checked against the limits.
            return stream.read(self.size + 1)


@dataclass
class Catalogue:
    """The astronomer's table: its extra columns, and one row per file path."""

    columns: list[str]
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    def row_for(self, path: str, *, basenames: dict[str, int]) -> dict[str, str]:
        """The row of a member: by its full path, else by its file name when that is unique."""
        row = self.rows.get(path)
        if row is None:
            name = PurePosixPath(path).name
            if basenames.get(name) == 1:
                row = self.rows.get(name)
        return dict(row) if row else {}


def is_nested_archive(path: str, head: bytes = b"") -> bool:
    return path.lower().endswith(NESTED_ARCHIVE_SUFFIXES) or head.startswith(_ARCHIVE_MAGIC)


def check_member_path(raw: str) -> str:
    """The member's path if it is a safe relative path; raises JobInputError otherwise."""
    if any(unicodedata.category(ch) == "Cc" for ch in raw):
        raise JobInputError(f"the archive member {raw!r} has control characters in its name")
    path = raw.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise JobInputError(f"the archive member {raw!r} has an absolute path")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise JobInputError(f"the archive member {raw!r} points outside the archive ('..')")
    clean = "/".join(parts)
    if len(clean) > MAX_MEMBER_PATH_LENGTH:
        raise JobInputError(
            f"the archive member path {clean[:60]!r}… is longer than {MAX_MEMBER_PATH_LENGTH}"
        )
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
    try:
        zf = zipfile.ZipFile(archive)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise JobInputError(f"not a readable .zip archive: {exc}") from exc
    files = _checked_files(infos, archive_size=archive_size)

    catalogues = [info for info in files if info.filename.lower().endswith(CATALOGUE_SUFFIX)]
    if len(catalogues) > 1:
        names = ", ".join(info.filename for info in catalogues[:5])
        raise JobInputError(f"the archive has more than one catalogue CSV ({names}); send one")
    catalogue = None
    if catalogues:
        info = catalogues[0]
        if info.file_size > MAX_CATALOGUE_BYTES:
            raise JobInputError(
                f"the catalogue {info.filename!r} is larger than {MAX_CATALOGUE_BYTES:,} bytes"
            )
        catalogue = read_catalogue(_read_member(zf, info), name=info.filename)
        files.remove(info)

    members = [
        MemberInput(
            path=check_member_path(info.filename),
            size=info.file_size,
            opener=lambda info=info: zf.open(info),
        )
        for info in files
    ]
    for member in members:
        member.error = _member_refusal(member.path, member.size)
    return members, catalogue


def _checked_files(infos: list[zipfile.ZipInfo], *, archive_size: int) -> list[zipfile.ZipInfo]:
    """The archive's files, once no member is a link or escapes it and no limit is passed."""
    files: list[zipfile.ZipInfo] = []
    for info in infos:
        if _is_link(info):
            raise JobInputError(f"the archive member {info.filename!r} is a link; links are not accepted")
        path = check_member_path(info.filename)
        if info.is_dir() or not path or path.startswith(_IGNORED_PREFIXES):
            continue
        files.append(info)
    if len(files) > settings.JOB_MAX_MEMBERS:
        raise JobInputError(
            f"the archive has {len(files):,} files, more than the limit of {settings.JOB_MAX_MEMBERS:,}",
            too_large=True,
        )
    # Sizes from the headers: reading never goes past them, so a lying header cannot expand further.
    expanded = sum(info.file_size for info in files)
    if expanded > settings.JOB_MAX_UNCOMPRESSED_BYTES:
        raise JobInputError(
            f"the archive would expand to {expanded:,} bytes, more than the limit of "
            f"{settings.JOB_MAX_UNCOMPRESSED_BYTES:,} bytes",
            too_large=True,
        )
    ratio = settings.JOB_MAX_COMPRESSION_RATIO
    for info in files:
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


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with zf.open(info) as stream:
            return stream.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise JobInputError(f"the archive member {info.filename!r} is unreadable: {exc}") from exc


def read_catalogue(data: bytes, *, name: str = "catalogue.csv") -> Catalogue:
    """Parse a catalogue CSV: a ``file`` column and any others (``id``, ``ra``, ``dec``, ...)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobInputError(f"the catalogue {name!r} is not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [column.strip() for column in (reader.fieldnames or [])]
    if CATALOGUE_FILE_COLUMN not in header:
        raise JobInputError(
            f"the catalogue {name!r} has no {CATALOGUE_FILE_COLUMN!r} column "
            f"(it has: {', '.join(header)[:200]})"
        )
    columns = [column for column in header if column and column != CATALOGUE_FILE_COLUMN]
    if len(columns) > MAX_CATALOGUE_COLUMNS or any(len(c) > MAX_COLUMN_NAME_LENGTH for c in columns):
        raise JobInputError(
            f"the catalogue {name!r} has more than {MAX_CATALOGUE_COLUMNS} columns or a column name "
            f"longer than {MAX_COLUMN_NAME_LENGTH} characters"
        )
    reader.fieldnames = header
    rows: dict[str, dict[str, str]] = {}
    try:
        for record in reader:
            key = (record.get(CATALOGUE_FILE_COLUMN) or "").strip().replace("\\", "/").removeprefix("./")
            if key:
                rows[key] = {column: (record.get(column) or "").strip()[:200] for column in columns}
    except csv.Error as exc:
        raise JobInputError(f"the catalogue {name!r} is not valid CSV: {exc}") from exc
    return Catalogue(columns=columns, rows=rows)


def file_members(uploads: Iterable[tuple[str, int, object]]) -> Iterator[MemberInput]:
    """Plain files (name, size, opener) as members, with the same per-file checks."""
    for name, size, opener in uploads:
        yield MemberInput(path=name, size=size, opener=opener, error=_member_refusal(name, size))


@dataclass
class Submission:
    """Everything a job is made from, before it is staged."""

    name: str
    members: list[MemberInput]
    catalogue: Catalogue | None = None


def _reopened(upload: IO[bytes]) -> IO[bytes]:
    upload.seek(0)
    return contextlib.nullcontext(upload)  # type: ignore[return-value]


def submission_from_uploads(
    *, archive: Any = None, images: Sequence[Any] = (), catalogue: Any = None
) -> Submission:
    """A submission from uploaded files: one .zip, or image files, and a catalogue CSV beside them."""
    if archive is not None and images:
        raise JobInputError("send either one archive or image files, not both")
    if archive is None and not images:
        raise JobInputError("send a .zip archive in the 'archive' field or images in 'image' fields")
    table = None
    if catalogue is not None:
        if catalogue.size > MAX_CATALOGUE_BYTES:
            raise JobInputError(f"the catalogue is larger than {MAX_CATALOGUE_BYTES:,} bytes", too_large=True)
        table = read_catalogue(catalogue.read(), name=catalogue.name or "catalogue.csv")
    if archive is not None:
        members, inner = read_zip(archive, archive_size=archive.size)
        if inner is not None and table is not None:
            raise JobInputError("the archive has a catalogue CSV and another was sent beside it; send one")
        name = archive.name or "archive.zip"
        if not members:
            raise JobInputError(f"the archive {name!r} has no files to classify")
        return Submission(name=name, members=members, catalogue=table or inner)
    from classifier.services import sanitise_filename

    entries = [
        (sanitise_filename(upload.name), upload.size, lambda u=upload: _reopened(u)) for upload in images
    ]
    return Submission(name=entries[0][0], members=list(file_members(entries)), catalogue=table)


def submission_from_paths(paths: Sequence[str]) -> Submission:
    """A submission from the command line: files, folders (recursively) or one .zip, and a CSV."""
    files, archives, catalogues = _collect_paths(paths)
    if len(catalogues) > 1:
        raise JobInputError("more than one catalogue CSV was given")
    table = read_catalogue(catalogues[0].read_bytes(), name=catalogues[0].name) if catalogues else None
    if archives:
        if len(archives) > 1 or files:
            raise JobInputError("give one .zip archive, or files and folders, not both")
        handle = archives[0].open("rb")
        members, inner = read_zip(handle, archive_size=archives[0].stat().st_size)
        if not members:
            raise JobInputError(f"the archive {archives[0].name!r} has no files to classify")
        return Submission(name=archives[0].name, members=members, catalogue=table or inner)
    if not files:
        raise JobInputError("no files to classify")
    entries = [(name, found.stat().st_size, lambda f=found: f.open("rb")) for name, found in files]
    return Submission(name=Path(paths[0]).name, members=list(file_members(entries)), catalogue=table)


def _collect_paths(paths: Sequence[str]) -> tuple[list[tuple[str, Path]], list[Path], list[Path]]:
    files: list[tuple[str, Path]] = []
    archives: list[Path] = []
    catalogues: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend((p.relative_to(path).as_posix(), p) for p in sorted(path.rglob("*")) if p.is_file())
        elif not path.is_file():
            raise JobInputError(f"{raw}: no such file or directory")
        elif path.suffix.lower() == ".zip":
            archives.append(path)
        elif path.suffix.lower() == CATALOGUE_SUFFIX:
            catalogues.append(path)
        else:
            files.append((path.name, path))
    return files, archives, catalogues
