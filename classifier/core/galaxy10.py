"""The Galaxy10 DECaLS label set, shared by training (ml/) and serving (classifier/).

Plain Python on purpose: ml/ imports it without Django, and the served model's
manifest is checked against it so that a model trained on another label order
cannot be served silently.

The texts are English, and stay English here: the names are the contract with the
manifest and are stored in every prediction. They are marked for translation where
they are defined (classifier.core.i18n.pgettext_noop), and the pages translate them only
when they show them (classifier/templatetags/galaxy10_i18n.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from classifier.core.i18n import pgettext_noop

CLASS_NAME_CONTEXT = "Galaxy10 class name"
CLASS_DESCRIPTION_CONTEXT = "Galaxy10 class description"
GROUP_CONTEXT = "Galaxy10 class group"


@dataclass(frozen=True)
class GalaxyClass:
    index: int
    name: str
    description: str
    group: str


# Groups are the four coarse morphologies that the Galaxy Zoo decision tree
# separates first; coarse accuracy is measured on them.
GROUP_DISTURBED = pgettext_noop("Galaxy10 class group", "disturbed or merging")
GROUP_SMOOTH = pgettext_noop("Galaxy10 class group", "smooth")
GROUP_FACE_ON_DISK = pgettext_noop("Galaxy10 class group", "face-on disk")
GROUP_EDGE_ON = pgettext_noop("Galaxy10 class group", "edge-on disk")

GALAXY10_CLASSES: tuple[GalaxyClass, ...] = (
    GalaxyClass(
        0,
        pgettext_noop("Galaxy10 class name", "Disturbed"),
        pgettext_noop(
            "Galaxy10 class description",
            "A galaxy whose shape has been distorted, with irregular or asymmetric "
            "structure but no clear second galaxy.",
        ),
        GROUP_DISTURBED,
    ),
    GalaxyClass(
        1,
        pgettext_noop("Galaxy10 class name", "Merging"),
        pgettext_noop(
            "Galaxy10 class description",
            "Two or more galaxies caught in the act of colliding or merging, "
            "often with tidal tails or bridges.",
        ),
        GROUP_DISTURBED,
    ),
    GalaxyClass(
        2,
        pgettext_noop("Galaxy10 class name", "Round Smooth"),
        pgettext_noop(
            "Galaxy10 class description",
            "A smooth, featureless galaxy that looks completely round, typical of elliptical galaxies.",
        ),
        GROUP_SMOOTH,
    ),
    GalaxyClass(
        3,
        pgettext_noop("Galaxy10 class name", "In-between Round Smooth"),
        pgettext_noop(
            "Galaxy10 class description",
            "A smooth, featureless galaxy that is somewhat elongated, between round and cigar-shaped.",
        ),
        GROUP_SMOOTH,
    ),
    GalaxyClass(
        4,
        pgettext_noop("Galaxy10 class name", "Cigar Shaped Smooth"),
        pgettext_noop(
            "Galaxy10 class description",
            "A smooth, featureless galaxy that is strongly elongated, like a cigar.",
        ),
        GROUP_SMOOTH,
    ),
    GalaxyClass(
        5,
        pgettext_noop("Galaxy10 class name", "Barred Spiral"),
        pgettext_noop(
            "Galaxy10 class description",
            "A face-on disk galaxy with a straight bar of stars across its centre, "
            "from whose ends the spiral arms start.",
        ),
        GROUP_FACE_ON_DISK,
    ),
    GalaxyClass(
        6,
        pgettext_noop("Galaxy10 class name", "Unbarred Tight Spiral"),
        pgettext_noop(
            "Galaxy10 class description",
            "A face-on disk galaxy without a bar whose spiral arms are tightly wound around the centre.",
        ),
        GROUP_FACE_ON_DISK,
    ),
    GalaxyClass(
        7,
        pgettext_noop("Galaxy10 class name", "Unbarred Loose Spiral"),
        pgettext_noop(
            "Galaxy10 class description",
            "A face-on disk galaxy without a bar whose spiral arms are loosely wound and open.",
        ),
        GROUP_FACE_ON_DISK,
    ),
    GalaxyClass(
        8,
        pgettext_noop("Galaxy10 class name", "Edge-on without Bulge"),
        pgettext_noop(
            "Galaxy10 class description",
            "A disk galaxy seen edge-on as a thin line of light, with no central bulge.",
        ),
        GROUP_EDGE_ON,
    ),
    GalaxyClass(
        9,
        pgettext_noop("Galaxy10 class name", "Edge-on with Bulge"),
        pgettext_noop(
            "Galaxy10 class description",
            "A disk galaxy seen edge-on with a rounded or boxy bulge of stars at its centre.",
        ),
        GROUP_EDGE_ON,
    ),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in GALAXY10_CLASSES)
NUM_CLASSES = len(GALAXY10_CLASSES)
GROUPS: tuple[str, ...] = (GROUP_DISTURBED, GROUP_SMOOTH, GROUP_FACE_ON_DISK, GROUP_EDGE_ON)
GROUP_OF_CLASS: tuple[int, ...] = tuple(GROUPS.index(c.group) for c in GALAXY10_CLASSES)


# Probabilities as every answer gives them (API, JSON, CSV, galaxy_zoo): an int8 model's steps
# (0.8622047244094488) carry no more information than four decimals.
PROBABILITY_DECIMALS = 4


def round_probability(value: float) -> float:
    """A probability as the API and the JSON exports give it."""
    return round(float(value), PROBABILITY_DECIMALS)
