"""Small presentation helpers for the classifier pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """Format a probability in [0, 1] as a percentage in the reader's locale: 0.4213 is
    "42.1%" in English and "42,1%" in Spanish, like the sizes that filesizeformat writes."""
    if value is None or value == "":
        return ""
    digits = int(digits)
    # number_format cuts extra decimals off rather than rounding them: round first.
    return f"{formats.number_format(round(float(value) * 100, digits), decimal_pos=digits)}%"


# One date and time format on every page, whatever the language: ISO 8601's order, a 24-hour
# clock and the time zone's abbreviation, so that a reader never guesses what "14:05" means.
TIMESTAMP_FORMAT = "Y-m-d H:i T"


@register.filter
def timestamp(value: datetime | None) -> SafeString | str:
    """A moment as <time>, in the site's time zone (settings.TIME_ZONE) with its abbreviation."""
    if not isinstance(value, datetime):
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return format_html(
        '<time datetime="{}">{}</time>', value.isoformat(), formats.date_format(value, TIMESTAMP_FORMAT)
    )


@register.filter
def bar_width(value: float | None) -> int:
    """Whole-percent width of a probability bar, clamped to 0..100.

    The bars are sized by CSS classes (.w-0 … .w-100) rather than inline
    styles so that the pages keep working under a strict Content-Security-Policy.
    """
    if value is None:
        return 0
    return max(0, min(100, round(float(value) * 100)))


@register.filter
def milliseconds(value: float | None) -> str:
    if value is None:
        return ""
    return _("%(ms).1f ms") % {"ms": float(value)}
