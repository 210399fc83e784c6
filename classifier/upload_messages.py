"""The upload page's error messages in the reader's language.

The services (and the preprocessing they share with training) explain a
refused upload in plain English, which the REST API and the command line
report as they are. The upload page shows the same refusals to people, so here
each known message is matched and rewritten through the translation catalog,
keeping its details (file counts, limits, decoder output). A message that is
not known here is shown unchanged rather than hidden.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext, gettext_noop

# (pattern of the English message, msgid whose %(name)s fields take the groups).
# Each msgid is the English message itself, so English pages read exactly as before.
UPLOAD_ERROR_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"no image was uploaded"), gettext_noop("no image was uploaded")),
    (
        re.compile(r"(?P<sent>\d+) files sent, at most (?P<allowed>\d+) are allowed"),
        gettext_noop("%(sent)s files sent, at most %(allowed)s are allowed"),
    ),
    (
        re.compile(r"the file is larger than the limit of (?P<limit>[\d,]+) bytes"),
        gettext_noop("the file is larger than the limit of %(limit)s bytes"),
    ),
    (re.compile(r"the file is empty"), gettext_noop("the file is empty")),
    (re.compile(r"not a recognised image format"), gettext_noop("not a recognised image format")),
    (
        # The services say "this" when the decoder could not name the format.
        re.compile(r"this images are not accepted \(accepted: (?P<accepted>.*)\)"),
        gettext_noop("this images are not accepted (accepted: %(accepted)s)"),
    ),
    (
        re.compile(r"(?P<format>.+?) images are not accepted \(accepted: (?P<accepted>.*)\)"),
        gettext_noop("%(format)s images are not accepted (accepted: %(accepted)s)"),
    ),
    (re.compile(r"the image has no pixels"), gettext_noop("the image has no pixels")),
    (
        re.compile(r"the image has too many pixels \(limit (?P<limit>[\d,]+)\)"),
        gettext_noop("the image has too many pixels (limit %(limit)s)"),
    ),
    (
        re.compile(
            r"the image is (?P<width>\d+)x(?P<height>\d+) pixels, "
            r"more than the limit of (?P<limit>[\d,]+) pixels"
        ),
        gettext_noop("the image is %(width)sx%(height)s pixels, more than the limit of %(limit)s pixels"),
    ),
    (
        re.compile(r"the image could not be decoded: (?P<detail>.*)", re.DOTALL),
        gettext_noop("the image could not be decoded: %(detail)s"),
    ),
)


def translate_upload_error(message: str) -> str:
    """The message in the active language when it is one of the known refusals."""
    text = str(message)
    for pattern, msgid in UPLOAD_ERROR_MESSAGES:
        match = pattern.fullmatch(text)
        if match:
            return gettext(msgid) % match.groupdict()
    return text
