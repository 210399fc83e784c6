"""Small presentation helpers for the classifier pages."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """Format a probability in [0, 1] as a percentage, e.g. 0.4213 -> "42.1%"."""
    if value is None:
        return ""
    return f"{float(value) * 100:.{int(digits)}f}%"


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
