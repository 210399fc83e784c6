"""Galaxy Zoo DECaLS vote counts: the questions, the table, and the Galaxy10 class they imply.

``../shared/data/gz_decals_votes/labels.csv`` holds raw vote *counts* per question: a
question's answers add up to its ``<question>_total-votes``. This module reads them into
one (N, answers) integer array per question, and maps the questions onto the GZ2 task
names of ``ml.labels`` so the one decision tree there turns DECaLS votes into Galaxy10
targets too:

* t01 smooth-or-featured (smooth, featured-or-disk, artifact);
* t02 disk-edge-on (yes, no); t03 bar: strong + weak against no; t04 has-spiral-arms;
* t07 how-rounded (round, in-between, cigar-shaped);
* t09 edge-on-bulge in GZ2's order (rounded, boxy, none); t10 spiral-winding;
* t06/t08 from ``merging``, the one question DECaLS asks of every galaxy: "merger" is
  GZ2's odd feature *merger* (Galaxy10 class 1), "major disturbance" its *disturbed*
  (class 0). A *minor* disturbance counts as an odd feature that keeps the galaxy in the
  regular tree (GZ2's "other"): Galaxy10 Disturbed galaxies are clearly disturbed, and a
  slightly lopsided spiral stays a spiral.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifier.core.galaxy_zoo import ANSWER_SLICES, NUM_ANSWERS, QUESTIONS
from ml import labels

ANSWER_COLUMNS: tuple[str, ...] = tuple(f"{q}_{a}" for q, answers in QUESTIONS.items() for a in answers)


@dataclass(frozen=True)
class VoteTable:
    """The rows of one GZ DECaLS vote table; ``counts`` (N, NUM_ANSWERS) in ``ANSWER_COLUMNS`` order."""

    files: list[str]
    iaunames: list[str]
    counts: np.ndarray
    galaxy10_label: np.ndarray  # exact Galaxy10 DECaLS class of members, -1 otherwise

    def __len__(self) -> int:
        return len(self.files)

    def question(self, name: str) -> np.ndarray:
        return self.counts[:, ANSWER_SLICES[name]]

    def total(self, name: str) -> np.ndarray:
        return self.question(name).sum(axis=1)


def read_vote_table(path: Path) -> VoteTable:
    """``labels.csv`` of gz_decals_votes. A question's answers may add up to less than its total
    (110 ``merging`` rows here: answers of an earlier version of the question that the table
    does not list), never to more; every use counts the listed answers only."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = np.array([[int(float(r[c] or 0)) for c in ANSWER_COLUMNS] for r in rows], dtype=np.int64)
    counts = counts.reshape(len(rows), NUM_ANSWERS)
    for question, part in ANSWER_SLICES.items():
        totals = np.array([int(float(r[f"{question}_total-votes"] or 0)) for r in rows], dtype=np.int64)
        bad = np.flatnonzero(counts[:, part].sum(axis=1) > totals)
        if len(bad):
            raise ValueError(f"{path}: row {bad[0] + 2}: {question} answers add up to more than its total")
    label = np.array([int(r.get("galaxy10_label") or -1) for r in rows], dtype=np.int64)
    return VoteTable([r["file"] for r in rows], [r["iauname"] for r in rows], counts, label)


def gz2_tasks(counts: np.ndarray) -> dict[str, np.ndarray]:
    """DECaLS answer counts (N, NUM_ANSWERS) as the GZ2 tasks ``ml.labels`` reads (see the module doc)."""
    q = {name: counts[:, part].astype(np.float64) for name, part in ANSWER_SLICES.items()}
    bar = q["bar"]
    merging = q["merging"]
    n = len(counts)
    zero = np.zeros(n)
    odd_feature = np.stack(
        # ring, lens, disturbed, irregular, other, merger, dust lane
        [zero, zero, merging[:, 2], zero, merging[:, 1], merging[:, 3], zero],
        axis=1,
    )
    return {
        "t01": q["smooth-or-featured"],
        "t02": q["disk-edge-on"],
        "t03": np.stack([bar[:, 0] + bar[:, 1], bar[:, 2]], axis=1),
        "t04": q["has-spiral-arms"],
        "t06": np.stack([merging[:, 1:].sum(axis=1), merging[:, 0]], axis=1),
        "t07": q["how-rounded"],
        "t08": odd_feature,
        "t09": q["edge-on-bulge"][:, [2, 0, 1]],
        "t10": q["spiral-winding"],
    }


def vote_targets(counts: np.ndarray, *, read_spiral: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Soft Galaxy10 targets (N, 10) and coverage (N,) implied by the votes, through ml.labels' tree."""
    return labels.galaxy10_targets(gz2_tasks(counts), read_spiral=read_spiral)


def smooth_fraction(counts: np.ndarray) -> np.ndarray:
    """The volunteers' smooth fraction of smooth-or-featured, artifact votes dropped (as the tree does)."""
    answers = counts[:, ANSWER_SLICES["smooth-or-featured"]][:, :2].astype(np.float64)
    total = answers.sum(axis=1)
    return np.divide(answers[:, 0], total, out=np.full(len(total), np.nan), where=total > 0)


def fraction_errors(predicted: np.ndarray, counts: np.ndarray, min_votes: int) -> dict[str, dict[str, Any]]:
    """Mean absolute error of predicted answer fractions (N, NUM_ANSWERS) against the volunteers',
    per question over the galaxies where that question has at least ``min_votes`` listed votes
    (fewer votes make the volunteers' own fraction too noisy to score against):
    {question: {"n", "mae" (the mean over its answers), "answers": {answer: mae}}}; a question
    no galaxy has enough votes for is left out."""
    out: dict[str, dict[str, Any]] = {}
    for question, part in ANSWER_SLICES.items():
        answers = counts[:, part].astype(np.float64)
        total = answers.sum(axis=1)
        scored = total >= max(1, min_votes)
        if not scored.any():
            continue
        volunteers = answers[scored] / total[scored, None]
        error = np.abs(predicted[scored][:, part] - volunteers).mean(axis=0)
        out[question] = {
            "n": int(scored.sum()),
            "mae": float(error.mean()),
            "answers": {a: float(e) for a, e in zip(QUESTIONS[question], error, strict=True)},
        }
    return out
