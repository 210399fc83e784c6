"""A job's .zip archive, checked as a whole before any member is read.

Its size, then its central directory's entry count and size (zip_directory.py), the size
it would expand to and its compression ratio (zip bombs), and every member's name
(absolute paths, "..", links), encryption and compression method. Those refuse the whole
archive. Members are then checked one by one as every job input is (members.py); images
are checked later, by the worker, through the same validation as an upload.
"""

from __future__ import annotations

import stat
import zipfile
from typing import IO

from django.conf import settings

from classifier.core.exceptions import JobInputError
from classifier.jobs.catalogues import CATALOGUE_SUFFIX, MAX_CATALOGUE_BYTES, Catalogue, read_catalogue
from classifier.jobs.members import DAMAGED_MEMBER_ERRORS, MemberInput, check_member_path, member_refusal
from classifier.jobs.zip_directory import check_central_directory

# Ratios are checked only above this size: small files are harmless whatever their ratio.
RATIO_CHECK_MIN_BYTES = 1024 * 1024
# Folders that archivers add beside the real files (macOS resource forks).
_IGNORED_PREFIXES = ("__MACOSX/",)
_ENCRYPTED = 0x1  # general purpose flag bit 0: traditional PKWARE or WinZip AES encryption
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_METHOD_NAMES = {6: "Implode", 9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES"}


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
    check_central_directory(archive)
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
        except DAMAGED_MEMBER_ERRORS as exc:
            raise JobInputError(f"the catalogue {info.filename!r} is unreadable: {exc}") from exc
        files.remove(catalogues[0])

    members = [
        MemberInput(path=path, size=info.file_size, opener=lambda info=info: zf.open(info))
        for info, path in files
    ]
    for member in members:
        member.error = member_refusal(member.path, member.size)
    return members, catalogue


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
