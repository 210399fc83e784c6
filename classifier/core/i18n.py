"""Marking messages for translation without importing Django.

makemessages finds the messages by the name of the function around them (gettext_noop is one
of xgettext's default keywords, pgettext_noop is taught in
classifier/management/commands/makemessages.py), so these stand-ins keep extraction working
while the core stays importable without Django. The text is returned untranslated: it is the
stored, logged form, and the pages and the API translate it where they show it.
"""

from __future__ import annotations


def gettext_noop(message: str) -> str:
    """Mark ``message`` for makemessages and return it untranslated."""
    return message


def pgettext_noop(context: str, message: str) -> str:
    """Mark ``message`` for makemessages under ``context`` and return it untranslated.

    xgettext reads the arguments as literals, so callers spell the context out.
    """
    return message
