"""Domain errors raised by the services and translated to HTTP by the API and pages."""

from __future__ import annotations

from typing import TypedDict


class FileError(TypedDict):
    filename: str
    error: str


class ClassifierError(Exception):
    """Base class for the errors the classifier app reports to its callers."""


class ImageValidationError(ClassifierError):
    """One or more uploads were refused; nothing was saved.

    ``too_large`` is set when a file was refused only for its size, which the
    API reports as 413 rather than 400.
    """

    def __init__(self, errors: list[FileError], *, too_large: bool = False) -> None:
        self.errors = errors
        self.too_large = too_large
        super().__init__("; ".join(f"{e['filename']}: {e['error']}" for e in errors) or "invalid upload")


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
