"""The Galaxy10 DECaLS label set, shared by training (ml/) and serving (classifier/).

Plain Python on purpose: ml/ imports it without Django, and the served model's
manifest is checked against it so that a model trained on another label order
cannot be served silently.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GalaxyClass:
    index: int
    name: str
    description: str
    group: str


# Groups are the four coarse morphologies that the Galaxy Zoo decision tree
# separates first; coarse accuracy is measured on them.
GROUP_DISTURBED = "disturbed or merging"
GROUP_SMOOTH = "smooth"
GROUP_FACE_ON_DISK = "face-on disk"
GROUP_EDGE_ON = "edge-on disk"

GALAXY10_CLASSES: tuple[GalaxyClass, ...] = (
    GalaxyClass(
        0,
        "Disturbed",
        "A galaxy whose shape has been distorted, with irregular or asymmetric "
        "structure but no clear second galaxy.",
        GROUP_DISTURBED,
    ),
    GalaxyClass(
        1,
        "Merging",
        "Two or more galaxies caught in the act of colliding or merging, often with tidal tails or bridges.",
        GROUP_DISTURBED,
    ),
    GalaxyClass(
        2,
        "Round Smooth",
        "A smooth, featureless galaxy that looks completely round, typical of elliptical galaxies.",
        GROUP_SMOOTH,
    ),
    GalaxyClass(
        3,
        "In-between Round Smooth",
        "A smooth, featureless galaxy that is somewhat elongated, between round and cigar-shaped.",
        GROUP_SMOOTH,
    ),
    GalaxyClass(
        4,
        "Cigar Shaped Smooth",
        "A smooth, featureless galaxy that is strongly elongated, like a cigar.",
        GROUP_SMOOTH,
    ),
    GalaxyClass(
        5,
        "Barred Spiral",
        "A face-on disk galaxy with a straight bar of stars across its centre, "
        "from whose ends the spiral arms start.",
        GROUP_FACE_ON_DISK,
    ),
    GalaxyClass(
        6,
        "Unbarred Tight Spiral",
        "A face-on disk galaxy without a bar whose spiral arms are tightly wound around the centre.",
        GROUP_FACE_ON_DISK,
    ),
    GalaxyClass(
        7,
        "Unbarred Loose Spiral",
        "A face-on disk galaxy without a bar whose spiral arms are loosely wound and open.",
        GROUP_FACE_ON_DISK,
    ),
    GalaxyClass(
        8,
        "Edge-on without Bulge",
        "A disk galaxy seen edge-on as a thin line of light, with no central bulge.",
        GROUP_EDGE_ON,
    ),
    GalaxyClass(
        9,
        "Edge-on with Bulge",
        "A disk galaxy seen edge-on with a rounded or boxy bulge of stars at its centre.",
        GROUP_EDGE_ON,
    ),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in GALAXY10_CLASSES)
NUM_CLASSES = len(GALAXY10_CLASSES)
GROUPS: tuple[str, ...] = (GROUP_DISTURBED, GROUP_SMOOTH, GROUP_FACE_ON_DISK, GROUP_EDGE_ON)
GROUP_OF_CLASS: tuple[int, ...] = tuple(GROUPS.index(c.group) for c in GALAXY10_CLASSES)
