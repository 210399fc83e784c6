"""The float model's scores on the cached splits, used to choose an epoch and a prior."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from classifier.core.galaxy10 import NUM_CLASSES
from classifier.core.preprocessing import PreprocessConfig
from ml import sources as src
from ml.augment import centre_views, normalise
from ml.dataset import Split
from ml.metrics import (
    GALAXY10_COUNTS,
    GROUP_MATRIX,
    MIN_COVERAGE,
    confusion_matrix,
    group_accuracy,
    group_vote_metrics,
    weighted_recall,
)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


@torch.no_grad()
def split_logits(
    model: torch.nn.Module,
    split: Split,
    pre: PreprocessConfig,
    rendering: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Logits of the split's centred views; ``rendering`` maps the [0, 1] views before the
    serving normalisation (e.g. ml.renderings.to_galaxy10_rendering)."""
    outputs = []
    for start in range(0, len(split.source), 128):
        pixels = torch.from_numpy(split.pixels[start : start + 128])
        zoom = torch.full((len(pixels),), split.zoom)
        views = centre_views(pixels, zoom, pre.size)
        if rendering is not None:
            views = rendering(views)
        outputs.append(predict_logits(model, normalise(views, pre)))
    return torch.cat(outputs) if outputs else torch.zeros(0, NUM_CLASSES)


def split_metrics(logits: torch.Tensor, source: src.SourceSet) -> dict[str, float]:
    if len(source) == 0:
        return {}
    probs = logits.softmax(dim=1).numpy()
    metrics: dict[str, float] = {}
    has_soft = source.soft_weight >= MIN_COVERAGE
    if has_soft.any():
        target = source.soft[has_soft]
        p = probs[has_soft]
        metrics["top1"] = float((p.argmax(1) == target.argmax(1)).mean())
        metrics["cross_entropy"] = float(-(target * np.log(p + 1e-9)).sum(1).mean())
        metrics["group4"] = float(((p @ GROUP_MATRIX).argmax(1) == (target @ GROUP_MATRIX).argmax(1)).mean())
    metrics.update(group_vote_metrics(probs, source.group_masks, source.group_targets, source.group_weights))
    return metrics


def pooled_validation(logits: list[torch.Tensor], splits: list[Split]) -> dict[str, float]:
    """Top-1 over every vote-labelled validation galaxy of every source, pooled.

    The model-selection score: galaxies are scored against their top class where
    Galaxy10 classes cover at least MIN_COVERAGE of their votes. The 30 DECaLS dev
    images never enter it.
    """
    probs, labels = [], []
    for split_logits_, split in zip(logits, splits, strict=True):
        covered = split.source.soft_weight >= MIN_COVERAGE
        if covered.any() and split.source.name not in src.NOT_POOLED:
            probs.append(split_logits_.softmax(dim=1).numpy()[covered])
            labels.append(split.source.soft[covered].argmax(axis=1))
    if not probs:
        return {}
    all_probs, all_labels = np.concatenate(probs), np.concatenate(labels)
    matrix = confusion_matrix(all_labels, all_probs.argmax(axis=1))
    return {
        "n": len(all_labels),
        "top1": float((all_probs.argmax(axis=1) == all_labels).mean()),
        "group4": group_accuracy(all_probs, all_labels),
        "balanced_accuracy": weighted_recall(matrix),
        "galaxy10_weighted_accuracy": weighted_recall(matrix, GALAXY10_COUNTS),
    }


def selection_score(record: dict[str, Any], select_on: str) -> float:
    """The number an epoch is chosen by (higher is better).

    "sdss_pooled": pooled SDSS validation top-1. "decals": agreement with the vote-implied class
    on the GZ DECaLS validation folds, ties broken by the lower cross-entropy against the
    vote-implied targets. Without the score's validation images the last epoch wins.
    """
    if select_on == "decals":
        decals = record.get("val/gz_decals_votes", {})
        if "top1" in decals:
            return decals["top1"] - 1e-3 * decals["cross_entropy"]
    elif select_on != "sdss_pooled":
        raise ValueError(f"unknown train.select_on {select_on!r}; expected 'sdss_pooled' or 'decals'")
    return record["val/pooled"].get("top1", float(record["epoch"]))
