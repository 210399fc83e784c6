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

The reverse direction, GZ2 answers as DECaLS counts (``hart_counts``), serves the vote head:
GZ2 asks seven of the DECaLS questions with the same answers (``HART_SHARED``; GZ2's t09
lists them in another order). The other three (bar, bulge-size, merging) are asked
differently and stay at zero counts, which the Dirichlet-multinomial scores as no evidence.
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


# The questions GZ2 (Hart et al. 2016 columns) shares with GZ DECaLS, answer for answer: the
# task prefix and its answers in the DECaLS answer order of QUESTIONS.
HART_SHARED: dict[str, tuple[str, tuple[str, ...]]] = {
    "smooth-or-featured": (
        "t01_smooth_or_features",
        ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact"),
    ),
    "disk-edge-on": ("t02_edgeon", ("a04_yes", "a05_no")),
    "has-spiral-arms": ("t04_spiral", ("a08_spiral", "a09_no_spiral")),
    "how-rounded": ("t07_rounded", ("a16_completely_round", "a17_in_between", "a18_cigar_shaped")),
    "edge-on-bulge": ("t09_bulge_shape", ("a26_boxy", "a27_no_bulge", "a25_rounded")),
    "spiral-winding": ("t10_arms_winding", ("a28_tight", "a29_medium", "a30_loose")),
    "spiral-arm-count": (
        "t11_arms_number",
        ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell"),
    ),
}
# Who reaches each shared question in GZ2's tree: every volunteer (None), or those who gave
# (question, answer). t04 follows t03 (bar), whose every answer leads on to it.
HART_REACHED_BY: dict[str, tuple[str, str] | None] = {
    "smooth-or-featured": None,
    "disk-edge-on": ("smooth-or-featured", "featured-or-disk"),
    "has-spiral-arms": ("disk-edge-on", "no"),
    "how-rounded": ("smooth-or-featured", "smooth"),
    "edge-on-bulge": ("disk-edge-on", "yes"),
    "spiral-winding": ("has-spiral-arms", "yes"),
    "spiral-arm-count": ("has-spiral-arms", "yes"),
}


def hart_counts(rows: list[dict[str, str]]) -> np.ndarray:
    """Answer counts (N, NUM_ANSWERS) in ``ANSWER_COLUMNS`` order from Hart et al. 2016 rows,
    for the questions of ``HART_SHARED``; every other question gets zero counts.

    Where a row has every ``<answer>_count`` column of a question, those are its counts.
    Otherwise they are reconstructed, an approximation: the volunteers who reached the
    question, times its answer fractions, rounded to whole votes by largest remainder (so
    the answers add up to the number who reached it). ``total_classifications`` reach
    smooth-or-featured; a later question is reached by the reconstructed count of the answer
    leading to it (``HART_REACHED_BY``). The fractions are the raw ``_fraction`` columns where
    the row has them (one missing answer of a question is the remainder), else the
    consistency-weighted ``_weighted_fraction`` (Willett et al. 2013), which downweights
    unreliable volunteers and so differs slightly from the raw share; ``_debiased`` is never
    used, being a correction towards a redshift-free population rather than what the
    volunteers said. The shared SDSS table has raw fractions for t01 only (smooth and
    features-or-disk). Checked there: the same derivation over all eleven tasks gives each
    galaxy's ``total_votes`` to 0.5 votes in the mean (of about 150; 4 at the 99th
    percentile), yet the counts remain an estimate of whole votes, not the votes themselves.
    """
    n = len(rows)
    counts = np.zeros((n, NUM_ANSWERS), dtype=np.int64)
    if not n:
        return counts
    header = set(rows[0])
    for question, (task, answers) in HART_SHARED.items():
        names = [f"{task}_{a}" for a in answers]
        part = ANSWER_SLICES[question]
        if all(f"{c}_count" in header for c in names):
            counts[:, part] = [[round(float(r[f"{c}_count"] or 0)) for c in names] for r in rows]
            continue
        parent = HART_REACHED_BY[question]
        if parent is None:
            reached = np.array([round(float(r["total_classifications"] or 0)) for r in rows], dtype=np.int64)
        else:
            reached = counts[:, ANSWER_SLICES[parent[0]]][:, QUESTIONS[parent[0]].index(parent[1])]
        counts[:, part] = _apportion(reached, _hart_fractions(rows, names, header))
    return counts


def _hart_fractions(rows: list[dict[str, str]], names: list[str], header: set[str]) -> np.ndarray:
    """One question's answer fractions (N, answers), each row summing to 1 or, if empty, to 0."""
    raw = [f"{c}_fraction" in header for c in names]
    if sum(raw) >= len(names) - 1:
        known = [i for i, has in enumerate(raw) if has]
        values = np.zeros((len(rows), len(names)))
        values[:, known] = [[float(r[f"{names[i]}_fraction"] or 0) for i in known] for r in rows]
        if len(known) < len(names):
            rest = raw.index(False)
            values[:, rest] = np.clip(1.0 - values.sum(axis=1), 0.0, None)
    else:
        values = np.array([[float(r[f"{c}_weighted_fraction"] or 0) for c in names] for r in rows])
    values = np.clip(values, 0.0, None)
    total = values.sum(axis=1, keepdims=True)
    return np.divide(values, total, out=np.zeros_like(values), where=total > 0)


def _apportion(reached: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Whole counts that add up to ``reached`` (0 where a row's fractions are all 0), each as
    close to ``reached * fraction`` as the total allows (largest remainder)."""
    reached = np.where(fractions.sum(axis=1) > 0, reached, 0)
    exact = reached[:, None] * fractions
    counts = np.floor(exact + 1e-9)
    short = np.clip(reached - counts.sum(axis=1), 0, fractions.shape[1])
    order = np.argsort(-(exact - counts), axis=1, kind="stable")
    rank = np.argsort(order, axis=1)
    return (counts + (rank < short[:, None])).astype(np.int64)
