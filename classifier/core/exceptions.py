"""Domain errors raised by the services and translated to HTTP by the API and pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict


class FileError(TypedDict):
    filename: str
    error: str


class Count(int):
    """A number that a message shows with thousands separators ("10,000,000"); the upload
    page writes it in the reader's locale instead (classifier/predictions/upload_messages.py)."""

    def __str__(self) -> str:
        return f"{int(self):,}"


def fill_template(template: str, params: dict[str, object]) -> str:
    """A %(name)s message template with its values (a template without values is used as is)."""
    return template % params if params else template


@dataclass(frozen=True)
class FileRefusal:
    """Why one upload (or, without a filename, the whole request) was refused.

    ``template`` is the English explanation with %(name)s fields and ``params`` fills
    them: the API and the command line report ``message``, and the upload page shows the
    template translated into the reader's language (classifier/predictions/upload_messages.py).
    """

    filename: str
    template: str
    params: dict[str, object] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return fill_template(self.template, self.params)


class ClassifierError(Exception):
    """Base class for the errors the classifier app reports to its callers."""


class ImageValidationError(ClassifierError):
    """One or more uploads were refused; nothing was saved.

    ``too_large`` is set when a file was refused only for its size, which the
    API reports as 413 rather than 400.
    """

    def __init__(self, refusals: list[FileRefusal], *, too_large: bool = False) -> None:
        self.refusals = refusals
        self.errors: list[FileError] = [{"filename": r.filename, "error": r.message} for r in refusals]
        self.too_large = too_large
        super().__init__("; ".join(f"{e['filename']}: {e['error']}" for e in self.errors) or "invalid upload")


class ModelUnavailableError(ClassifierError):
    """The model cannot be served: missing, corrupt, or not matching its manifest."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StorageUnavailableError(ClassifierError):
    """The audit log cannot be written: the database or the media storage failed."""

    def __init__(self, reason: str = "storage is unavailable") -> None:
        self.reason = reason
        super().__init__(reason)
