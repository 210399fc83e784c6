"""Translated display of the Galaxy10 class names, descriptions and groups.

classifier/core/galaxy10.py defines them in English and marks them for makemessages; stored
and served values stay English, and are translated here only when a page shows them.
"""

from __future__ import annotations

from django import template
from django.utils.translation import pgettext

from classifier.core.galaxy10 import CLASS_DESCRIPTION_CONTEXT, CLASS_NAME_CONTEXT, GROUP_CONTEXT

register = template.Library()


@register.filter
def galaxy_class_name(name: str) -> str:
    """A class name in the reader's language; a name the catalog lacks is shown as stored."""
    return pgettext(CLASS_NAME_CONTEXT, str(name)) if name else ""


@register.filter
def galaxy_class_description(description: str) -> str:
    return pgettext(CLASS_DESCRIPTION_CONTEXT, str(description)) if description else ""


@register.filter
def galaxy_group(group: str) -> str:
    return pgettext(GROUP_CONTEXT, str(group)) if group else ""
