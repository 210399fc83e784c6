"""Submissions: everything a job is made from, gathered from uploads, local paths or typed
positions, before it is staged.

One .zip (checked as a whole by archives.py), or plain files, with an optional catalogue
CSV beside them; or a catalogue of positions alone, whose cutouts the worker fetches.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from classifier.core.exceptions import JobInputError
from classifier.jobs.archives import read_zip
from classifier.jobs.catalogues import (
    CATALOGUE_SUFFIX,
    MAX_CATALOGUE_BYTES,
    Catalogue,
    catalogue_of_positions,
    read_catalogue,
    read_position_catalogue,
)
from classifier.jobs.members import MemberInput, clean_path, file_members, path_parts
from classifier.predictions.filenames import sanitise_filename


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


def submission_from_positions(entries: Sequence[tuple[str, Any]], *, name: str) -> Submission:
    """A job from positions typed on the page: (the text as typed, its parsed Position) each."""
    members, catalogue = catalogue_of_positions(entries)
    return Submission(name=name, members=members, catalogue=catalogue)


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
    return [(clean_path(path_parts(p.relative_to(folder).as_posix())), p) for p in sorted(found)]


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
