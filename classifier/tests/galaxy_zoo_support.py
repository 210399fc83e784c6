"""Galaxy Zoo answers written by hand, in the shape classifier.core.galaxy_zoo.galaxy_zoo_answer
gives: one from a model without a vote output (groups only), one from a model with it."""

from __future__ import annotations

GROUPS = {"disturbed_or_merging": 0.05, "smooth": 0.15, "face_on_disk": 0.7, "edge_on_disk": 0.1}

GROUPS_ONLY = {"groups": GROUPS, "questions": None}

# A barred spiral as the volunteers would see it: featured, not edge-on, a strong bar.
WITH_VOTES = {
    "groups": GROUPS,
    "questions": {
        "smooth-or-featured": {"smooth": 0.2, "featured-or-disk": 0.75, "artifact": 0.05},
        "disk-edge-on": {"yes": 0.1, "no": 0.9},
        "bar": {"strong": 0.6, "weak": 0.3, "no": 0.1},
        "has-spiral-arms": {"yes": 0.85, "no": 0.15},
        "bulge-size": {"dominant": 0.05, "large": 0.1, "moderate": 0.5, "small": 0.3, "none": 0.05},
        "how-rounded": {"round": 0.3, "in-between": 0.6, "cigar-shaped": 0.1},
        "merging": {"none": 0.8, "minor-disturbance": 0.1, "major-disturbance": 0.05, "merger": 0.05},
    },
}
