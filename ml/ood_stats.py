"""The out-of-distribution gate's statistics (docs/ood.md): the robust Gaussian fit, one per
survey family for a mixture, the survey shift and separation of each feature, AUROC, and the
metrics table of a fitted gate."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from classifier.core import ood

# Every feature classifier.core.ood computes is measured and reported.
FEATURES = ood.FEATURE_NAMES
# Survey families of the training sources (ml.dataset.collect_sources names them): a source
# whose name starts with one of these is DECaLS imaging, in either rendering (GZ DECaLS:
# gz_decals_partial, gz_decals_votes; Galaxy10 DECaLS: galaxy10_h5); every other one is SDSS.
DECALS_PREFIXES = ("gz_decals", "galaxy10")
FAMILIES = ("sdss", "decals")
# A family gets its own Gaussian only with this many training galaxies (a mean and a covariance
# over a handful of features); with fewer, the gate is one Gaussian over every family.
MIN_COMPONENT_GALAXIES = 200
# A feature whose mean differs between the training surveys' galaxies (SDSS and DECaLS) by
# this many pooled standard deviations or more is dropped: it measures the survey's sky,
# stretch or noise, and a cutout from another survey or pipeline would be flagged for it
# (docs/ood.md has the table).
SURVEY_SHIFT_LIMIT = 1.0
# Robust fit: refit without the farthest share of the training galaxies (odd framings,
# bright stars, mislabelled frames) so they do not inflate the covariance.
TRIM_FRACTION = 0.025
TRIM_ROUNDS = 3


@dataclass(frozen=True)
class Component:
    """One fitted Gaussian of the gate, over the selected features."""

    name: str
    mean: np.ndarray
    inverse: np.ndarray
    train_galaxies: int


@dataclass
class FeatureSet:
    name: str
    values: np.ndarray  # (n, len(FEATURES))

    def __len__(self) -> int:
        return len(self.values)


def fit_gaussian(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse covariance, refitted TRIM_ROUNDS times without the farthest TRIM_FRACTION."""
    kept = values
    for _ in range(TRIM_ROUNDS + 1):
        mean = kept.mean(axis=0)
        covariance = np.cov(kept, rowvar=False)
        # A little ridge keeps the inverse finite when two features move together.
        covariance += np.eye(len(mean)) * 1e-6 * np.trace(covariance) / len(mean)
        inverse = np.linalg.inv(covariance)
        distances = ood.squared_mahalanobis(values, mean, inverse)
        kept = values[distances <= np.quantile(distances, 1 - TRIM_FRACTION)]
    return mean, inverse


def family(view: str) -> str:
    """The survey family ("sdss" or "decals") of a view named "split/source@crop"."""
    source = view.split("/", 1)[-1].split("@", 1)[0]
    return "decals" if source.startswith(DECALS_PREFIXES) else "sdss"


def fit_components(views: dict[str, np.ndarray], *, mixture: bool = True) -> list[Component]:
    """One Gaussian per survey family of the training views ({name: (n, features)}), in
    FAMILIES order; one Gaussian ("all") over every view when ``mixture`` is off, when only one
    family is present or when one has fewer than MIN_COMPONENT_GALAXIES galaxies."""
    grouped = {
        name: np.concatenate(found)
        for name in FAMILIES
        if (found := [values for view, values in views.items() if family(view) == name])
    }
    if not mixture or len(grouped) < 2 or min(map(len, grouped.values())) < MIN_COMPONENT_GALAXIES:
        grouped = {"all": np.concatenate(list(views.values()))}
    return [Component(name, *fit_gaussian(values), len(values)) for name, values in grouped.items()]


def mixture_score(values: np.ndarray, components: list[Component]) -> np.ndarray:
    """Squared Mahalanobis distance of each row to the nearest component."""
    return np.min([ood.squared_mahalanobis(values, c.mean, c.inverse) for c in components], axis=0)


def survey_shift(views: dict[str, np.ndarray]) -> dict[str, float]:
    """Per feature, (mean of DECaLS galaxies - mean of SDSS galaxies) / pooled standard deviation."""
    decals = [v for name, v in views.items() if family(name) == "decals"]
    sdss = [v for name, v in views.items() if family(name) == "sdss"]
    if not decals or not sdss:
        # One survey only: nothing tells the survey's imaging from the galaxies; keep every feature.
        return dict.fromkeys(FEATURES, 0.0)
    a, b = np.concatenate(decals), np.concatenate(sdss)
    pooled = np.sqrt((a.var(axis=0) + b.var(axis=0)) / 2) + 1e-12
    return dict(zip(FEATURES, ((a.mean(axis=0) - b.mean(axis=0)) / pooled).tolist(), strict=True))


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(score of a negative > score of a positive), ties counting half (Mann-Whitney U)."""
    if len(positives) == 0 or len(negatives) == 0:
        return math.nan
    scores = np.concatenate([positives, negatives])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # Average ranks over ties.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    negative_ranks = ranks[len(positives) :].sum()
    n_neg = len(negatives)
    return float((negative_ranks - n_neg * (n_neg + 1) / 2) / (len(positives) * n_neg))


def feature_separation(galaxies: np.ndarray, negatives: np.ndarray, mean: np.ndarray) -> dict[str, float]:
    """Each feature alone: AUROC of its distance from the galaxies' robust centre."""
    spread = np.median(np.abs(galaxies - mean), axis=0) + 1e-9
    return {
        name: auroc(
            np.abs(galaxies[:, i] - mean[i]) / spread[i], np.abs(negatives[:, i] - mean[i]) / spread[i]
        )
        for i, name in enumerate(FEATURES)
    }


def metrics_table(
    val: list[FeatureSet],
    test: list[FeatureSet],
    negatives: list[FeatureSet],
    score: Callable[[np.ndarray], np.ndarray],
    threshold: float,
) -> dict[str, Any]:
    """Flag rate per set, and AUROC of the pooled test galaxies (dev images included) against
    each negative family."""
    rows: dict[str, Any] = {}
    for s in [*val, *test, *negatives]:
        values = score(s.values)
        rows[s.name] = {
            "n": len(s),
            "flagged": round(float((values > threshold).mean()), 4) if len(s) else None,
        }
    galaxies = np.concatenate([score(s.values) for s in test])
    pooled_negatives = np.concatenate([score(n.values) for n in negatives])
    for n in negatives:
        rows[n.name]["auroc_vs_test_galaxies"] = round(auroc(galaxies, score(n.values)), 4)
    return {
        "sets": rows,
        "test_galaxies_flagged": round(float((galaxies > threshold).mean()), 4),
        "negatives_flagged": round(float((pooled_negatives > threshold).mean()), 4),
        "auroc": round(auroc(galaxies, pooled_negatives), 4),
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'set':34} {'n':>6} {'flagged':>8} {'AUROC':>7}"]
    for name, row in report["sets"].items():
        flagged = "-" if row["flagged"] is None else f"{row['flagged']:.1%}"
        auc = row.get("auroc_vs_test_galaxies")
        lines.append(f"{name:34} {row['n']:>6} {flagged:>8} {'' if auc is None else f'{auc:.3f}':>7}")
    lines.append(
        f"test galaxies flagged {report['test_galaxies_flagged']:.1%}; negatives flagged "
        f"{report['negatives_flagged']:.1%}; AUROC (all negatives vs test galaxies) {report['auroc']:.3f}"
    )
    if "components" in report:
        lines.append("components (training galaxies): " + ", ".join(
            f"{name} ({row['train_galaxies']})" for name, row in report["components"].items()
        ))  # fmt: skip
    if "survey_shift_train" in report:
        lines.append("survey shift, DECaLS vs SDSS training galaxies, in pooled SDs (|shift| >= "
                     f"{SURVEY_SHIFT_LIMIT} dropped): " + ", ".join(
            f"{name} {value:+.2f}" for name, value in report["survey_shift_train"].items()
        ))  # fmt: skip
    if "feature_auroc_val" in report:
        lines.append("one feature alone (validation galaxies vs all negatives): " + ", ".join(
            f"{name} {value:.2f}" for name, value in report["feature_auroc_val"].items()
        ))  # fmt: skip
    return "\n".join(lines)
