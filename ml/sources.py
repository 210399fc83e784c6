"""Data source adapters. Each turns one labelled collection into a ``SourceSet``.

A ``SourceSet`` is columnar: image references plus up to three kinds of target
per image, so one batch can mix them and one loss handles all:

* ``soft``: a distribution over the 10 classes (votes) or a one-hot (hard label),
  used with cross-entropy, where ``soft_weight`` > 0;
* ``group_*``: up to ``MAX_GROUPS`` constraints "the probability summed over
  this group of classes should be f", used with binary cross-entropy, where
  ``group_weights`` > 0. A certain coarse label is f = 1, i.e. -log sum(p).

``crop_fraction`` is the centre crop that gives the source the Galaxy10 DECaLS
framing (the galaxy fills about a third of the frame); see ml/README.md.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classifier.core.formats import RASTER_SUFFIXES
from classifier.core.galaxy10 import CLASS_NAMES, NUM_CLASSES
from ml import decals_folds, labels, votes
from ml.config import Config, ConfigLike

MAX_GROUPS = 3
# Sources scored on their own, never joined into the pooled (SDSS-voted) validation:
# GZ DECaLS votes are the target-domain validation set (ml/decals_validation.py).
NOT_POOLED = frozenset({"gz_decals_votes"})


@dataclass(frozen=True)
class H5Image:
    """One image inside a Galaxy10-schema HDF5 file."""

    path: str
    index: int


ImageRef = str | H5Image


@dataclass
class SourceSet:
    name: str
    images: list[ImageRef]
    keys: list[str]
    crop_fraction: float
    soft: np.ndarray
    soft_weight: np.ndarray
    group_masks: np.ndarray
    group_targets: np.ndarray
    group_weights: np.ndarray
    # The class (or coarse group, offset by NUM_CLASSES) a stratified split keeps balanced.
    strata: np.ndarray
    notes: dict[str, object] = field(default_factory=dict)
    # Answer counts in the GZ DECaLS layout (N, ml.votes.NUM_ANSWERS) for the vote likelihood, or
    # None: GZ DECaLS's own, or GZ2's on the questions it shares (ml.votes.hart_counts).
    votes: np.ndarray | None = None
    # A split fixed by the source itself (0 train, 1 validation, 2 test), or None: stratified.
    fixed_split: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SourceSet:
        idx = np.asarray(indices, dtype=np.int64)
        return SourceSet(
            name=self.name,
            images=[self.images[i] for i in idx],
            keys=[self.keys[i] for i in idx],
            crop_fraction=self.crop_fraction,
            soft=self.soft[idx],
            soft_weight=self.soft_weight[idx],
            group_masks=self.group_masks[idx],
            group_targets=self.group_targets[idx],
            group_weights=self.group_weights[idx],
            strata=self.strata[idx],
            notes=dict(self.notes),
            votes=None if self.votes is None else self.votes[idx],
            fixed_split=None if self.fixed_split is None else self.fixed_split[idx],
        )


def _empty_targets(n: int) -> dict[str, np.ndarray]:
    return {
        "soft": np.zeros((n, NUM_CLASSES), np.float32),
        "soft_weight": np.zeros(n, np.float32),
        "group_masks": np.zeros((n, MAX_GROUPS, NUM_CLASSES), np.float32),
        "group_targets": np.zeros((n, MAX_GROUPS), np.float32),
        "group_weights": np.zeros((n, MAX_GROUPS), np.float32),
    }


def soft_source(
    name: str, images: list[ImageRef], keys: list[str], soft: np.ndarray, crop_fraction: float
) -> SourceSet:
    targets = _empty_targets(len(images))
    targets["soft"][:] = soft
    targets["soft_weight"][:] = 1.0
    return SourceSet(
        name=name,
        images=images,
        keys=keys,
        crop_fraction=crop_fraction,
        strata=np.argmax(soft, axis=1),
        **targets,
    )


def hard_source(
    name: str, images: list[ImageRef], keys: list[str], label: np.ndarray, crop_fraction: float
) -> SourceSet:
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(label, dtype=np.int64)]
    return soft_source(name, images, keys, one_hot, crop_fraction)


def group_source(
    name: str,
    images: list[ImageRef],
    keys: list[str],
    constraints: list[list[labels.GroupConstraint]],
    crop_fraction: float,
) -> SourceSet:
    targets = _empty_targets(len(images))
    strata = np.zeros(len(images), np.int64)
    for row, row_constraints in enumerate(constraints):
        for slot, constraint in enumerate(row_constraints[:MAX_GROUPS]):
            targets["group_masks"][row, slot] = constraint.mask()
            targets["group_targets"][row, slot] = constraint.target
            targets["group_weights"][row, slot] = constraint.weight
        first = row_constraints[0]
        strata[row] = NUM_CLASSES + min(first.classes) + (first.target >= 0.5)
    return SourceSet(
        name=name, images=images, keys=keys, crop_fraction=crop_fraction, strata=strata, **targets
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _columns(rows: list[dict[str, str]], names: Sequence[str]) -> dict[str, np.ndarray]:
    return {n: np.array([float(r[n] or 0.0) for r in rows], dtype=np.float64) for n in names}


def vote_source(
    name: str,
    images: list[ImageRef],
    keys: list[str],
    tasks: dict[str, np.ndarray],
    crop_fraction: float,
    read_spiral: bool,
) -> SourceSet:
    """Soft targets from GZ2 tasks; with ``read_spiral`` each galaxy is weighted by its coverage.

    The strata stay those of the v1 targets whatever the label rule, so the
    train/validation/test split, and with it every held-out image, never moves.
    """
    soft, coverage = labels.galaxy10_targets(tasks, read_spiral=read_spiral)
    source = soft_source(name, images, keys, soft, crop_fraction)
    source.soft_weight[:] = coverage
    source.strata = np.argmax(labels.galaxy10_from_tasks(tasks), axis=1)
    if read_spiral:
        source.notes["mean_coverage"] = round(float(coverage.mean()), 4)
    return source


def load_gz2_hart(
    root: Path, crop_fraction: float, *, read_spiral: bool = False, with_votes: bool = False
) -> SourceSet:
    """GZ2 votes, Hart et al. 2016 columns: soft targets from the debiased fractions; with
    ``with_votes`` (``train.gz2_votes``) also the answer counts of the questions GZ DECaLS shares,
    reconstructed from the volunteers' own fractions (``ml.votes.hart_counts``), for the vote head."""
    rows = _read_csv(root / "votes.csv")
    wanted = [c + "_debiased" for names in labels.HART_COLUMNS.values() for c in names]
    tasks = labels.hart_tasks(_columns(rows, wanted))
    images = [str(root / "images" / r["file"]) for r in rows]
    source = vote_source("gz2_hart", images, [r["file"] for r in rows], tasks, crop_fraction, read_spiral)
    if with_votes:
        source.votes = votes.hart_counts(rows).astype(np.float32)
        source.notes["votes"] = int(source.votes.sum())
    return source


def load_gz2_kaggle(root: Path, crop_fraction: float, *, read_spiral: bool = False) -> SourceSet:
    rows = _read_csv(root / "votes.csv")
    wanted = [c for names in labels.KAGGLE_COLUMNS.values() for c in names]
    tasks = labels.kaggle_tasks(_columns(rows, wanted))
    images = [str(root / "images" / r["file"]) for r in rows]
    return vote_source("gz2_kaggle", images, [r["file"] for r in rows], tasks, crop_fraction, read_spiral)


def load_gz1(root: Path, crop_fraction: float) -> SourceSet:
    rows = [r for r in _read_csv(root / "labels.csv") if r["gz1_class_name"] in labels.GZ1_GROUPS]
    constraints = [labels.gz1_constraints(r["gz1_class_name"]) for r in rows]
    images = [str(root / "images" / r["file"]) for r in rows]
    return group_source("gz1", images, [r["file"] for r in rows], constraints, crop_fraction)


def load_gz_decals_partial(root: Path, crop_fraction: float) -> SourceSet:
    rows = _read_csv(root / "labels.csv")
    constraints = [
        labels.gz_decals_constraints(
            float(r["smooth-or-featured_featured-or-disk_fraction"]),
            float(r["disk-edge-on_no_fraction"]),
            float(r["has-spiral-arms_no_fraction"]),
        )
        for r in rows
    ]
    images = [str(root / "images" / r["file"]) for r in rows]
    return group_source("gz_decals_partial", images, [r["file"] for r in rows], constraints, crop_fraction)


def load_gz_decals_votes(root: Path, crop_fraction: float, config: Config) -> SourceSet:
    """Galaxy Zoo DECaLS vote counts: every galaxy, with its answer counts and vote-implied target.

    The split is fixed by ml/decals_folds.py rather than drawn: the validation folds
    (galaxies with >= 20 votes) are "val", the exact Galaxy10 members outside them "test",
    and every other galaxy, however few its votes, "train". ``soft_weight`` is the target's
    coverage, as for GZ2 votes; training scales it by the number of votes (ml/dataset.py).
    """
    validation = decals_folds.build(votes.read_vote_table(root / "labels.csv"), config)
    table = validation.table
    images: list[ImageRef] = [str(root / f) for f in table.files]
    source = soft_source("gz_decals_votes", images, list(table.files), validation.soft, crop_fraction)
    source.soft_weight[:] = validation.coverage
    source.votes = table.counts.astype(np.float32)
    source.fixed_split = np.where(validation.validation, 1, np.where(validation.member, 2, 0))
    source.notes.update(
        {
            "validation_galaxies": int(validation.validation.sum()),
            "held_out_members": int((validation.member & ~validation.validation).sum()),
            "votes": int(table.total("smooth-or-featured").sum()),
        }
    )
    return source


def load_galaxy10_dev(root: Path, crop_fraction: float) -> SourceSet:
    rows = _read_csv(root / "labels.csv")
    label = np.array([int(r["label_index"]) for r in rows])
    for row in rows:
        if CLASS_NAMES[int(row["label_index"])] != row["label_name"]:
            raise ValueError(f"{row['file']}: label name {row['label_name']!r} is not Galaxy10's")
    images = [str(root / r["file"]) for r in rows]
    return hard_source("galaxy10_decals_dev", images, [r["file"] for r in rows], label, crop_fraction)


def load_galaxy10_h5(path: Path, crop_fraction: float) -> SourceSet:
    """The Galaxy10 DECaLS file, with pixel-identical duplicates removed.

    A duplicate group whose labels agree keeps its first image; a group with
    conflicting labels is dropped entirely, since its true class is unknown.
    """
    import h5py

    with h5py.File(path, "r") as h5:
        answers = np.asarray(h5["ans"][:], dtype=np.int64)
        images = h5["images"]
        digests = [hashlib.sha256(images[i].tobytes()).hexdigest() for i in range(len(answers))]
    groups: dict[str, list[int]] = {}
    for index, digest in enumerate(digests):
        groups.setdefault(digest, []).append(index)
    keep: list[int] = []
    conflicting = duplicate = 0
    for members in groups.values():
        if len(members) == 1:
            keep.append(members[0])
        elif len({answers[i] for i in members}) == 1:
            duplicate += len(members) - 1
            keep.append(members[0])
        else:
            conflicting += len(members)
    keep.sort()
    source = hard_source(
        "galaxy10_h5",
        [H5Image(str(path), i) for i in keep],
        [f"{path.name}#{i}" for i in keep],
        answers[keep],
        crop_fraction,
    )
    source.notes.update(
        {"rows": len(answers), "dropped_duplicates": duplicate, "dropped_conflicting": conflicting}
    )
    return source


def load_folder(root: Path, crop_fraction: float) -> SourceSet:
    """Users' own data: one subfolder per class, named by index ("3") or Galaxy10 name."""
    images: list[ImageRef] = []
    label: list[int] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        cls = _parse_label(folder.name)
        for file in sorted(folder.rglob("*")):
            if file.suffix.lower() in RASTER_SUFFIXES:
                images.append(str(file))
                label.append(cls)
    return hard_source(f"folder:{root.name}", images, images.copy(), np.array(label), crop_fraction)


def load_csv_manifest(path: Path, crop_fraction: float) -> SourceSet:
    """Users' own data as a CSV with columns path,label (relative paths from the CSV)."""
    rows = _read_csv(path)
    images: list[ImageRef] = [str((path.parent / r["path"]).resolve()) for r in rows]
    label = np.array([_parse_label(r["label"]) for r in rows])
    return hard_source(f"csv:{path.name}", images, images.copy(), label, crop_fraction)


def _parse_label(value: str) -> int:
    value = value.strip()
    if value.isdigit() and int(value) < NUM_CLASSES:
        return int(value)
    normalised = {n.lower().replace(" ", "_"): i for i, n in enumerate(CLASS_NAMES)}
    key = value.lower().replace(" ", "_")
    if key not in normalised:
        raise ValueError(f"unknown Galaxy10 label {value!r}")
    return normalised[key]


def stratified_split(
    strata: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices with each stratum split in the given proportions."""
    rng = np.random.default_rng(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for stratum in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        n_val = round(len(members) * fractions[1])
        n_test = round(len(members) * fractions[2])
        parts[1].extend(members[:n_val])
        parts[2].extend(members[n_val : n_val + n_test])
        parts[0].extend(members[n_val + n_test :])
    train, val, test = (np.sort(np.array(p, dtype=np.int64)) for p in parts)
    return train, val, test


def split_indices(source: SourceSet, config: ConfigLike) -> dict[str, np.ndarray]:
    """The "train", "val" and "test" indices of ``source`` as every part of ml/ splits it:
    stratified, with the configuration's fractions and its top-level seed, unless the
    source fixes its own split (the GZ DECaLS votes: ml/decals_folds.py)."""
    if source.fixed_split is not None:
        return {
            name: np.flatnonzero(source.fixed_split == i) for i, name in enumerate(("train", "val", "test"))
        }
    config = Config.of(config)
    parts = stratified_split(source.strata, config.split.fractions, config.seed)
    return dict(zip(("train", "val", "test"), parts, strict=True))
