"""Translated display of the Galaxy10 class names, descriptions and groups.

classifier/galaxy10.py stays plain English: its names are the contract with the
model's manifest and are stored in every prediction. The same texts are marked
here for makemessages and translated only when a page shows them, so that the
stored and served values never change with the reader's language.
"""

from __future__ import annotations

from django import template
from django.utils.translation import pgettext, pgettext_lazy

register = template.Library()

CLASS_NAME_CONTEXT = "Galaxy10 class name"
CLASS_DESCRIPTION_CONTEXT = "Galaxy10 class description"
GROUP_CONTEXT = "Galaxy10 class group"

# The English texts of classifier.galaxy10, repeated so that makemessages finds
# them (lazily, so nothing is translated at import); test_i18n checks that these
# lists and galaxy10.py stay identical. xgettext needs each context spelled out
# as a literal, hence the repetition.
CLASS_NAMES = (
    pgettext_lazy("Galaxy10 class name", "Disturbed"),
    pgettext_lazy("Galaxy10 class name", "Merging"),
    pgettext_lazy("Galaxy10 class name", "Round Smooth"),
    pgettext_lazy("Galaxy10 class name", "In-between Round Smooth"),
    pgettext_lazy("Galaxy10 class name", "Cigar Shaped Smooth"),
    pgettext_lazy("Galaxy10 class name", "Barred Spiral"),
    pgettext_lazy("Galaxy10 class name", "Unbarred Tight Spiral"),
    pgettext_lazy("Galaxy10 class name", "Unbarred Loose Spiral"),
    pgettext_lazy("Galaxy10 class name", "Edge-on without Bulge"),
    pgettext_lazy("Galaxy10 class name", "Edge-on with Bulge"),
)

CLASS_DESCRIPTIONS = (
    pgettext_lazy(
        "Galaxy10 class description",
        "A galaxy whose shape has been distorted, with irregular or asymmetric "
        "structure but no clear second galaxy.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "Two or more galaxies caught in the act of colliding or merging, often with tidal tails or bridges.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A smooth, featureless galaxy that looks completely round, typical of elliptical galaxies.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A smooth, featureless galaxy that is somewhat elongated, between round and cigar-shaped.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A smooth, featureless galaxy that is strongly elongated, like a cigar.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A face-on disk galaxy with a straight bar of stars across its centre, "
        "from whose ends the spiral arms start.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A face-on disk galaxy without a bar whose spiral arms are tightly wound around the centre.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A face-on disk galaxy without a bar whose spiral arms are loosely wound and open.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A disk galaxy seen edge-on as a thin line of light, with no central bulge.",
    ),
    pgettext_lazy(
        "Galaxy10 class description",
        "A disk galaxy seen edge-on with a rounded or boxy bulge of stars at its centre.",
    ),
)

GROUPS = (
    pgettext_lazy("Galaxy10 class group", "disturbed or merging"),
    pgettext_lazy("Galaxy10 class group", "smooth"),
    pgettext_lazy("Galaxy10 class group", "face-on disk"),
    pgettext_lazy("Galaxy10 class group", "edge-on disk"),
)


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
