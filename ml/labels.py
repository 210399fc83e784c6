"""Galaxy10 targets derived from Galaxy Zoo votes.

The Galaxy Zoo 2 decision tree is multiplied down to the ten Galaxy10 classes:

* odd (t06 yes) with odd feature "merger" -> 1 Merging; "disturbed" or
  "irregular" -> 0 Disturbed. Other odd features (ring, lens, dust lane, other)
  do not take a galaxy out of the regular tree, so the remaining mass
  ``regular = 1 - P(0) - P(1)`` flows down the rest of the tree;
* smooth (t01, star/artifact votes dropped) -> how rounded (t07): completely
  round 2, in between 3, cigar 4;
* features or disk -> edge-on (t02 yes) -> bulge shape (t09): none 8,
  rounded or boxy 9;
* features or disk, not edge-on -> bar (t03 yes) 5; no bar -> arm winding
  (t10): tight 6, medium or loose 7.

With ``read_spiral`` (the v2 labels), unbarred face-on disks also pass the
spiral question (t04): only the share with arms reaches the winding classes.
Armless face-on disks (lenticulars, rings) have no Galaxy10 class, so that mass
is dropped instead of being split between the spirals; what remains, the
galaxy's *coverage*, weights its target in training (``galaxy10_targets``).

Every task's answers are first normalised to fractions *conditional* on
reaching the task, so both catalogue forms (Hart et al. 2016 per-task
fractions, Kaggle cumulative products) feed the same tree. A task that nobody
reached (all zeros) falls back to uniform answers, which keeps the target a
proper distribution. The result is renormalised to sum to 1.

Coarse labels (Galaxy Zoo 1, Galaxy Zoo DECaLS partial fractions) cannot name
a single class; they constrain the summed probability of a group of classes
(see ``GroupConstraint``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from classifier.core.galaxy10 import NUM_CLASSES

SMOOTH = (2, 3, 4)
FACE_ON_SPIRAL = (5, 6, 7)
EDGE_ON = (8, 9)
DISK = (5, 6, 7, 8, 9)
MERGER = (1,)

# Answer order of each task, shared by both catalogue forms.
HART_COLUMNS: dict[str, tuple[str, ...]] = {
    "t01": (
        "t01_smooth_or_features_a01_smooth",
        "t01_smooth_or_features_a02_features_or_disk",
        "t01_smooth_or_features_a03_star_or_artifact",
    ),
    "t02": ("t02_edgeon_a04_yes", "t02_edgeon_a05_no"),
    "t03": ("t03_bar_a06_bar", "t03_bar_a07_no_bar"),
    "t04": ("t04_spiral_a08_spiral", "t04_spiral_a09_no_spiral"),
    "t06": ("t06_odd_a14_yes", "t06_odd_a15_no"),
    "t07": (
        "t07_rounded_a16_completely_round",
        "t07_rounded_a17_in_between",
        "t07_rounded_a18_cigar_shaped",
    ),
    "t08": (
        "t08_odd_feature_a19_ring",
        "t08_odd_feature_a20_lens_or_arc",
        "t08_odd_feature_a21_disturbed",
        "t08_odd_feature_a22_irregular",
        "t08_odd_feature_a23_other",
        "t08_odd_feature_a24_merger",
        "t08_odd_feature_a38_dust_lane",
    ),
    "t09": (
        "t09_bulge_shape_a25_rounded",
        "t09_bulge_shape_a26_boxy",
        "t09_bulge_shape_a27_no_bulge",
    ),
    "t10": (
        "t10_arms_winding_a28_tight",
        "t10_arms_winding_a29_medium",
        "t10_arms_winding_a30_loose",
    ),
}

KAGGLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "t01": ("Class1.1", "Class1.2", "Class1.3"),
    "t02": ("Class2.1", "Class2.2"),
    "t03": ("Class3.1", "Class3.2"),
    "t04": ("Class4.1", "Class4.2"),
    "t06": ("Class6.1", "Class6.2"),
    "t07": ("Class7.1", "Class7.2", "Class7.3"),
    "t08": tuple(f"Class8.{i}" for i in range(1, 8)),
    "t09": ("Class9.1", "Class9.2", "Class9.3"),
    "t10": ("Class10.1", "Class10.2", "Class10.3"),
}


def conditional(answers: np.ndarray) -> np.ndarray:
    """Normalise each row of one task's answers to sum to 1 (uniform if empty)."""
    answers = np.clip(np.asarray(answers, dtype=np.float64), 0.0, None)
    totals = answers.sum(axis=1, keepdims=True)
    uniform = np.full_like(answers, 1.0 / answers.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, answers / np.where(totals > 0, totals, 1.0), uniform)


def galaxy10_mass(tasks: dict[str, np.ndarray], *, read_spiral: bool = False) -> np.ndarray:
    """Vote mass per Galaxy10 class, shape (N, 10); rows sum to the galaxy's coverage (<= 1).

    Without ``read_spiral`` every row sums to 1 (the v1 labels). With it, the
    mass of armless unbarred face-on disks (t04 "no") belongs to no class.
    """
    t01 = conditional(tasks["t01"][:, :2])  # a galaxy image: drop star/artifact votes
    edge_on = conditional(tasks["t02"])[:, 0]
    bar = conditional(tasks["t03"])[:, 0]
    odd = conditional(tasks["t06"])[:, 0]
    rounded = conditional(tasks["t07"])
    odd_feature = conditional(tasks["t08"])
    bulge_shape = conditional(tasks["t09"])
    winding = conditional(tasks["t10"])
    spiral = conditional(tasks["t04"])[:, 0] if read_spiral else np.ones(len(t01))

    smooth, disk = t01[:, 0], t01[:, 1]
    merging = odd * odd_feature[:, 5]
    disturbed = odd * (odd_feature[:, 2] + odd_feature[:, 3])
    regular = np.clip(1.0 - merging - disturbed, 0.0, 1.0)

    target = np.zeros((len(smooth), NUM_CLASSES))
    target[:, 0] = disturbed
    target[:, 1] = merging
    for column, cls in enumerate(SMOOTH):
        target[:, cls] = regular * smooth * rounded[:, column]
    edge = regular * disk * edge_on
    target[:, 8] = edge * bulge_shape[:, 2]
    target[:, 9] = edge * (bulge_shape[:, 0] + bulge_shape[:, 1])
    face_on = regular * disk * (1.0 - edge_on)
    target[:, 5] = face_on * bar
    armed = face_on * (1.0 - bar) * spiral
    target[:, 6] = armed * winding[:, 0]
    target[:, 7] = armed * (winding[:, 1] + winding[:, 2])
    return target


def galaxy10_targets(
    tasks: dict[str, np.ndarray], *, read_spiral: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Soft targets (N, 10) summing to 1, and each galaxy's coverage (N,) in [0, 1].

    A galaxy with no Galaxy10 mass at all (every vote for an armless disk) keeps
    its v1 target so the row stays a distribution; its coverage of 0 gives it no weight.
    """
    mass = galaxy10_mass(tasks, read_spiral=read_spiral)
    total = mass.sum(axis=1)
    legacy = galaxy10_mass(tasks) if read_spiral else mass
    usable = total > 1e-6
    target = np.where(usable[:, None], mass / np.where(usable, total, 1.0)[:, None], legacy)
    target = target / target.sum(axis=1, keepdims=True)
    return target.astype(np.float32), np.clip(total, 0.0, 1.0).astype(np.float32)


def galaxy10_from_tasks(tasks: dict[str, np.ndarray], *, read_spiral: bool = False) -> np.ndarray:
    """Soft Galaxy10 targets, shape (N, 10), from per-task answer arrays (any scale)."""
    return galaxy10_targets(tasks, read_spiral=read_spiral)[0]


def agreement(target: np.ndarray) -> np.ndarray:
    """How clearly the votes pick one class: the largest target probability per row."""
    return np.asarray(target).max(axis=1)


def _tasks_from_table(
    rows: dict[str, np.ndarray], columns: dict[str, tuple[str, ...]]
) -> dict[str, np.ndarray]:
    return {task: np.stack([rows[c] for c in names], axis=1) for task, names in columns.items()}


def hart_tasks(rows: dict[str, np.ndarray], suffix: str = "_debiased") -> dict[str, np.ndarray]:
    """Per-task answers from Hart et al. 2016 columns; ``suffix`` picks the vote correction."""
    columns = {t: tuple(c + suffix for c in names) for t, names in HART_COLUMNS.items()}
    return _tasks_from_table(rows, columns)


def kaggle_tasks(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-task answers from the Kaggle challenge's cumulative Class1.1..Class11.6 columns."""
    return _tasks_from_table(rows, KAGGLE_COLUMNS)


def galaxy10_from_hart(
    rows: dict[str, np.ndarray], suffix: str = "_debiased", *, read_spiral: bool = False
) -> np.ndarray:
    """Targets from Hart et al. 2016 columns; ``suffix`` picks the vote correction."""
    return galaxy10_from_tasks(hart_tasks(rows, suffix), read_spiral=read_spiral)


def galaxy10_from_kaggle(rows: dict[str, np.ndarray], *, read_spiral: bool = False) -> np.ndarray:
    """Targets from the Kaggle challenge's cumulative Class1.1..Class11.6 columns."""
    return galaxy10_from_tasks(kaggle_tasks(rows), read_spiral=read_spiral)


@dataclass(frozen=True)
class GroupConstraint:
    """The summed probability of ``classes`` should equal ``target``."""

    classes: tuple[int, ...]
    target: float
    weight: float = 1.0

    def mask(self) -> np.ndarray:
        mask = np.zeros(NUM_CLASSES, dtype=np.float32)
        mask[list(self.classes)] = 1.0
        return mask


# Galaxy Zoo 1 classes, by gz1_class_name. "dont_know" is dropped.
GZ1_GROUPS: dict[str, tuple[int, ...]] = {
    "elliptical": SMOOTH,
    "spiral_clockwise": FACE_ON_SPIRAL,
    "spiral_anticlockwise": FACE_ON_SPIRAL,
    "edge_on": EDGE_ON,
    "merger": MERGER,
}


def gz1_constraints(class_name: str) -> list[GroupConstraint]:
    """A certain coarse class: the loss is -log of the group's summed probability."""
    if class_name not in GZ1_GROUPS:
        return []
    return [GroupConstraint(GZ1_GROUPS[class_name], 1.0)]


def gz_decals_constraints(featured: float, not_edge_on: float, no_spiral: float) -> list[GroupConstraint]:
    """Galaxy Zoo DECaLS fractions as soft group targets, multiplied down the tree.

    ``featured`` is the featured-or-disk fraction (against smooth); the edge-on
    and spiral questions are only asked of featured galaxies, so their groups'
    targets are products along the tree.
    """
    edge_on = featured * (1.0 - not_edge_on)
    spiral = featured * not_edge_on * (1.0 - no_spiral)
    return [
        GroupConstraint(DISK, featured),
        GroupConstraint(EDGE_ON, edge_on),
        GroupConstraint(FACE_ON_SPIRAL, spiral),
    ]
