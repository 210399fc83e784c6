"""Galaxy10 probabilities derived from predicted Galaxy Zoo DECaLS vote fractions.

Galaxy10 DECaLS was made by sending each galaxy's volunteer votes down the Galaxy Zoo decision
tree; ``ml.votes.vote_targets`` does the same to the vote table for the vote-implied class. A
model with a vote output predicts the expected vote fraction of every answer, so its fractions
can be sent down the very same tree (``ml.votes.gz2_tasks`` then ``ml.labels.galaxy10_targets``)
instead of reading its own 10-class head.

Fractions stand in for counts unchanged: ``gz2_tasks`` only slices, sums answers of one question
(t03: strong + weak bar; t06: the merging answers other than "none") and reorders them (t09), and
``ml.labels.galaxy10_mass`` normalises every task to fractions *conditional* on reaching it
before multiplying down the tree. A question's predicted fractions are its counts divided by the
question's total, so every task is the counts' task scaled by one positive number per galaxy,
which the conditional normalisation removes. (A question nobody answered, all counts zero, falls
back to uniform answers; a model's fractions are never all zero, so that case does not arise.)

Where the tree sends mass to no Galaxy10 class (with ``read_spiral``: armless face-on disks),
``galaxy10_targets`` renormalises over the ten classes and returns the covered share, the
*coverage*, which is kept for reporting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from classifier.core.galaxy_zoo import NUM_ANSWERS
from ml import votes
from ml.metrics import MIN_COVERAGE


def tree_probabilities(fractions: np.ndarray, *, read_spiral: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Galaxy10 probabilities (N, 10), renormalised over the ten classes, and the tree's coverage
    (N,) in [0, 1], from predicted vote fractions (N, NUM_ANSWERS) in ``votes.ANSWER_COLUMNS``
    order. ``read_spiral`` must match the rule the compared targets were made with
    (``config.labels.read_spiral``)."""
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 2 or fractions.shape[1] != NUM_ANSWERS:
        raise ValueError(f"expected vote fractions of shape (N, {NUM_ANSWERS}), got {fractions.shape}")
    # An int8 output can dip a hair below zero; a negative share has no meaning in the tree.
    return votes.vote_targets(np.clip(fractions, 0.0, None), read_spiral=read_spiral)


def blend(head: np.ndarray, tree: np.ndarray) -> np.ndarray:
    """The mean of the 10-class head's and the tree's probabilities (both rows sum to 1)."""
    return (np.asarray(head, dtype=np.float64) + np.asarray(tree, dtype=np.float64)) / 2.0


def derived_probabilities(
    head: np.ndarray, fractions: np.ndarray, *, read_spiral: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The two alternatives to the head's probabilities, ``{"tree": ..., "blend": ...}``, from the
    same images' predicted vote fractions, and the tree's coverage."""
    tree, coverage = tree_probabilities(fractions, read_spiral=read_spiral)
    return {"tree": tree, "blend": blend(head, tree)}, coverage


def coverage_summary(coverage: np.ndarray) -> dict[str, Any]:
    """How much of the predicted votes the ten classes cover: the mean, and how many galaxies fall
    below ``MIN_COVERAGE`` (the threshold under which a vote-implied class is not scored)."""
    coverage = np.asarray(coverage, dtype=np.float64)
    return {
        "n": len(coverage),
        "mean": float(coverage.mean()) if len(coverage) else None,
        "below_min_coverage": int((coverage < MIN_COVERAGE).sum()),
    }
