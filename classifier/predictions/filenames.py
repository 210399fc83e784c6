"""Names under which uploads are stored and shown: cleaned of paths, control and bidi
characters, and bounded in length. Names are never used as paths (files are stored by hash)."""

from __future__ import annotations

import unicodedata

MAX_FILENAME_LENGTH = 255
FALLBACK_FILENAME = "upload"


def sanitise_filename(name: str | None) -> str:
    """The basename only, without control characters, at most 255 characters.

    The result is safe to store and to show (templates still escape it); it is
    never used as a path, since stored files are named by their content hash.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Category C covers control, format (bidi overrides), NUL and unassigned code points.
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        return FALLBACK_FILENAME
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


def sanitise_relative_name(name: str) -> str:
    """A relative path, each part cleaned as sanitise_filename does, at most 255 characters
    (the folders nearest the root are dropped first, the file's own name is kept)."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    cleaned = [sanitise_filename(part) for part in parts] or [FALLBACK_FILENAME]
    while len(cleaned) > 1 and len("/".join(cleaned)) > MAX_FILENAME_LENGTH:
        cleaned.pop(0)
    return "/".join(cleaned)
