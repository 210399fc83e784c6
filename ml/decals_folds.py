"""The GZ DECaLS validation folds: which galaxies choose models and stay out of training.

The galaxies of ``gz_decals_votes`` with at least ``min_votes`` votes on smooth-or-featured are
cut into ``folds`` folds, stratified by the Galaxy10 group their votes imply and seeded, and
ordered by IAU name first, so neither the row order of the table nor a new row moves any other
galaxy between folds. The folds listed in ``validation_folds`` are the validation set
(ml/decals_validation.py scores models on it); the ``gz_decals_votes`` training source
(ml/sources.py) never sees them, nor the exact Galaxy10 members.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifier.core.galaxy10 import GROUP_OF_CLASS
from ml import votes
from ml.config import Config

VOTES_DIR = "gz_decals_votes"


def assign_folds(
    iaunames: list[str], strata: np.ndarray, eligible: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """Fold index per row (-1 where not ``eligible``): stratified, seeded, and independent of row order.

    Within each stratum the galaxies are sorted by name, shuffled with ``seed`` and dealt
    round-robin; each stratum starts dealing where the previous one stopped, so fold sizes
    differ by at most one.
    """
    fold = np.full(len(iaunames), -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    dealt = 0
    for stratum in np.unique(strata[eligible]):
        members = list(np.flatnonzero(eligible & (strata == stratum)))
        members.sort(key=lambda i: iaunames[i])
        for position, row in enumerate(rng.permutation(members)):
            fold[row] = (dealt + position) % folds
        dealt += len(members)
    return fold


@dataclass(frozen=True)
class DecalsValidation:
    """The vote table with each row's fold (-1: too few votes) and role."""

    table: votes.VoteTable
    fold: np.ndarray
    validation: np.ndarray  # bool: in a validation fold
    member: np.ndarray  # bool: an exact Galaxy10 member
    soft: np.ndarray  # vote-implied Galaxy10 targets (N, 10)
    coverage: np.ndarray

    @property
    def held_out(self) -> np.ndarray:
        """Rows the training source must not see: validation folds and exact members."""
        return self.validation | self.member


def build(table: votes.VoteTable, config: Config) -> DecalsValidation:
    opts = config.decals_validation
    soft, coverage = votes.vote_targets(table.counts, read_spiral=config.labels.read_spiral)
    strata = np.asarray(GROUP_OF_CLASS)[soft.argmax(axis=1)]
    eligible = table.total("smooth-or-featured") >= opts.min_votes
    fold = assign_folds(table.iaunames, strata, eligible, opts.folds, opts.seed)
    validation = np.isin(fold, opts.validation_folds)
    return DecalsValidation(table, fold, validation, table.galaxy10_label >= 0, soft, coverage)


def load(data_root: Path, config: Config) -> DecalsValidation:
    return build(votes.read_vote_table(data_root / VOTES_DIR / "labels.csv"), config)
