"""The refusals and failures the services and decoders raise, in one family.

Every member carries a stable ``code`` (a short snake_case name that clients, metrics and
logs may rely on), the HTTP ``status`` it stands for, a fixed English ``detail`` sentence
and a ``reason`` (the English explanation of this occurrence). The API and the pages
translate them to responses in one place each (classifier/api/errors.py,
classifier/ops/responses.py); this module imports nothing from Django, so training and
the command line use it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict


class FileError(TypedDict):
    filename: str
    error: str


class GroupedNumber(int):
    """A number that a message shows with thousands separators ("10,000,000"); the upload
    page writes it in the reader's locale instead (classifier/predictions/upload_messages.py)."""

    def __str__(self) -> str:
        return f"{int(self):,}"


def fill_template(template: str, params: dict[str, object]) -> str:
    """A %(name)s message template with its values (a template without values is used as is)."""
    return template % params if params else template


# The code of each upload refusal template (the refusals metric's reason label); a refusal
# whose template is not here is "other". Keyed by the whole template, which is also the
# message's translation key, so a reworded message shows here as a missing entry.
REFUSAL_CODES: dict[str, str] = {
    "the file is empty": "empty_file",
    "the file is larger than the limit of %(limit)s bytes": "file_too_large",
    "%(format)s images are not accepted (accepted: %(accepted)s)": "format_not_accepted",
    "this images are not accepted (accepted: %(accepted)s)": "format_not_accepted",
    "no image was uploaded": "no_file",
    "the image has no pixels": "no_pixels",
    "not a recognised image format": "not_an_image",
    "%(sent)s files sent, at most %(allowed)s are allowed": "too_many_files",
    (
        "the FITS image is %(shape)s values of %(bitpix)s bits and would need %(needed)s "
        "MB of memory to decode, more than the limit of %(limit)s MB: send a smaller "
        "cutout"
    ): "too_many_pixels",
    "the image has too many pixels (limit %(limit)s)": "too_many_pixels",
    (
        "the image is %(width)sx%(height)s pixels in %(mode)s mode and would need "
        "%(needed)s MB of memory to decode, more than the limit of %(limit)s MB: send a "
        "smaller image, or a JPEG"
    ): "too_many_pixels",
    "the image is %(width)sx%(height)s pixels, more than the limit of %(limit)s pixels": "too_many_pixels",
    (
        "the image is a progressive or multi-scan JPEG of %(width)sx%(height)s pixels and"
        " would need %(needed)s MB of memory to decode, more than the limit of %(limit)s "
        "MB: send a smaller image, or a baseline JPEG"
    ): "too_many_pixels",
    "the image could not be decoded: %(detail)s": "undecodable",
}
OTHER_REFUSAL = "other"


@dataclass(frozen=True)
class FileRefusal:
    """Why one upload (or, without a filename, the whole request) was refused.

    ``template`` is the English explanation with %(name)s fields and ``params`` fills
    them: the API and the command line report ``message``, and the upload page shows the
    template translated into the reader's language (classifier/predictions/upload_messages.py).
    ``code`` is the refusal's stable name, REFUSAL_CODES' entry for the template unless given.
    """

    filename: str
    template: str
    params: dict[str, object] = field(default_factory=dict)
    code: str = ""

    def __post_init__(self) -> None:
        if not self.code:
            object.__setattr__(self, "code", REFUSAL_CODES.get(self.template, OTHER_REFUSAL))

    @property
    def message(self) -> str:
        return fill_template(self.template, self.params)


class ClassifierError(Exception):
    """Base class for the errors the classifier app reports to its callers.

    ``code`` and ``status`` are class attributes; a member whose status depends on the
    occurrence (a size limit, a timeout) sets its own on the instance.
    """

    code: str = "error"
    status: int = 500
    detail: str = "the request failed"
    # Seconds after which the same request may succeed, sent as Retry-After; None: no hint.
    retry_after: int | None = None

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def payload(self) -> dict[str, Any]:
        """The JSON error body: the ErrorOutput shape the API documents."""
        return {"detail": self.detail, "reason": self.reason}


class ImageValidationError(ClassifierError):
    """One or more uploads were refused; nothing was saved.

    ``too_large`` is set when a file was refused only for its size, which the
    API reports as 413 rather than 400.
    """

    code = "upload_refused"
    status = 400
    detail = "the upload was refused, nothing was saved"

    def __init__(self, refusals: list[FileRefusal], *, too_large: bool = False) -> None:
        self.refusals = refusals
        self.errors: list[FileError] = [{"filename": r.filename, "error": r.message} for r in refusals]
        self.too_large = too_large
        if too_large:
            self.code, self.status = "upload_too_large", 413
        super().__init__("; ".join(f"{e['filename']}: {e['error']}" for e in self.errors) or "invalid upload")

    def payload(self) -> dict[str, Any]:
        return {"detail": self.detail, "errors": self.errors}


class ImageDecodeError(ClassifierError, ValueError):
    """The bytes are not an image that can be used; str() is the English explanation.

    ``template`` is that explanation with %(name)s fields and ``params`` fills them, so a
    page can show it in the reader's language (classifier/predictions/upload_messages.py) while the
    API and the command line report the English text. The services report it as a FileRefusal
    of the upload, whose code REFUSAL_CODES gives.
    """

    code = "undecodable"
    status = 400
    detail = "the image was refused"

    def __init__(self, template: str, **params: object) -> None:
        self.template = template
        self.params = params
        super().__init__(fill_template(template, params))


class ModelUnavailableError(ClassifierError):
    """The model cannot be served: missing, corrupt, or not matching its manifest."""

    code = "model_unavailable"
    status = 503
    detail = "the model is unavailable"


class StorageUnavailableError(ClassifierError):
    """The audit log cannot be written: the database or the media storage failed."""

    code = "storage_unavailable"
    status = 503
    detail = "storage is unavailable"

    def __init__(self, reason: str = "storage is unavailable") -> None:
        super().__init__(reason)


class PositionError(ClassifierError):
    """The coordinates are not a position on the sky."""

    code = "position_refused"
    status = 400
    detail = "the position was refused, nothing was saved"


class NoImagingError(ClassifierError):
    """The survey has no imaging at this position: a 404, or a blank cutout."""

    code = "no_imaging"
    status = 422
    detail = "no imaging at this position, nothing was saved"

    def __init__(self, reason: str, *, url: str = "") -> None:
        self.url = url
        super().__init__(reason)


class CutoutUnavailableError(ClassifierError):
    """The cutout service failed, after retries: 504 when it was too slow, 502 otherwise."""

    code = "cutout_unavailable"
    status = 502
    detail = "the cutout service failed, nothing was saved"

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        self.timed_out = timed_out
        if timed_out:
            self.code, self.status = "cutout_timeout", 504
        super().__init__(reason)


class JobInputError(ClassifierError):
    """The submission was refused as a whole; nothing was saved.

    ``too_large`` marks a size limit (413), anything else is a bad request (400).
    """

    code = "job_refused"
    status = 400
    detail = "the job was refused, nothing was saved"

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        self.too_large = too_large
        if too_large:
            self.code, self.status = "job_too_large", 413
        super().__init__(reason)


class MemberUnreadableError(ClassifierError):
    """One member's bytes could not be read (corrupt compressed data, a failed read): the
    member fails with this reason, the rest of the job goes on."""

    code = "member_unreadable"
    status = 422
    detail = "a file of the job could not be read"


class JobQueueUnavailableError(ClassifierError):
    """The broker refused the job's chunks; the job is marked failed with this reason.

    The reason names no broker host or port (the service keeps those for its log)."""

    code = "job_queue_unavailable"
    status = 503
    detail = "the job queue is unavailable"
    # A broker outage is usually a restart.
    retry_after = 30
