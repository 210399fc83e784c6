"""What every job input is made of: members, their paths and the per-file refusals.

A member is one file of a submission (an archive member, an uploaded or local file, or a
catalogue row whose cutout the worker fetches). Member paths are cleaned as upload file
names are (bidi overrides and zero-width characters removed). A member that is itself an
archive, or larger than the per-file upload limit, is kept as a failed member with its
reason, so the rest of the job goes on.
"""

from __future__ import annotations

import lzma
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings

from classifier.core.exceptions import JobInputError, MemberUnreadableError
from classifier.predictions.filenames import sanitise_filename

NESTED_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")
NESTED_ARCHIVE_REASON = "nested archives are not expanded; send their files in the outer archive"
# At most 4 bytes a character: the (job, path) index stays under PostgreSQL's btree row limit.
MAX_MEMBER_PATH_LENGTH = 500
_DRIVE = re.compile(r"^[A-Za-z]:")
# What reading a damaged member raises: zipfile's CRC and header checks, each decompressor's
# error (bz2's is an OSError), a stream cut short, and an encrypted local header.
DAMAGED_MEMBER_ERRORS = (
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
        except DAMAGED_MEMBER_ERRORS as exc:
            raise MemberUnreadableError(f"the file is corrupt or could not be read: {exc}"[:500]) from exc


def is_nested_archive(path: str, head: bytes = b"") -> bool:
    return path.lower().endswith(NESTED_ARCHIVE_SUFFIXES) or head.startswith(_ARCHIVE_MAGIC)


def path_parts(raw: str) -> list[str]:
    return [part for part in raw.replace("\\", "/").split("/") if part not in ("", ".")]


def clean_path(parts: Sequence[str]) -> str:
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
    parts = path_parts(path)
    if ".." in parts:
        raise JobInputError(f"the archive member {raw!r} points outside the archive ('..')")
    joined = "/".join(parts)
    if len(joined) > MAX_MEMBER_PATH_LENGTH:
        raise JobInputError(
            f"the archive member path {joined[:60]!r}… is longer than {MAX_MEMBER_PATH_LENGTH}"
        )
    clean = clean_path(parts)
    if _DRIVE.match(clean):
        # A drive letter that an invisible character hid.
        raise JobInputError(f"the archive member {raw!r} has an absolute path")
    return clean


def member_refusal(path: str, size: int) -> str:
    if is_nested_archive(path):
        return NESTED_ARCHIVE_REASON
    if size > settings.MAX_UPLOAD_BYTES:
        return f"the file is larger than the limit of {settings.MAX_UPLOAD_BYTES:,} bytes"
    return ""


def file_members(uploads: Iterable[tuple[str, int, object]]) -> Iterator[MemberInput]:
    """Plain files (name, size, opener) as members, with the same per-file checks."""
    for name, size, opener in uploads:
        yield MemberInput(path=name, size=size, opener=opener, error=member_refusal(name, size))
