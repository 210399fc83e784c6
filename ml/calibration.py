"""After training: the served class prior folded into the head, and the calibration temperature."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from classifier.core.galaxy10 import NUM_CLASSES
from ml import sources as src
from ml.augment import centre_views, normalise
from ml.config import Config
from ml.dataset import Split, batch_tensors, epoch_plan, serving_preprocess_config
from ml.metrics import GALAXY10_COUNTS, MIN_COVERAGE
from ml.scoring import pooled_validation, predict_logits, split_logits

log = logging.getLogger("ml.train")

PRIORS = ("training", "balanced", "galaxy10")


def served_prior(name: str) -> np.ndarray:
    if name == "galaxy10":
        return GALAXY10_COUNTS / GALAXY10_COUNTS.sum()
    return np.full(NUM_CLASSES, 1.0 / NUM_CLASSES)


def prior_adjustment(learnt: np.ndarray, name: str) -> np.ndarray:
    """Logit offsets that swap the prior the model learnt for the served one (logit adjustment).

    "training" keeps the accidental prior of the training mix; "balanced" and
    "galaxy10" divide it out and multiply the chosen one in.
    """
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; expected one of {PRIORS}")
    if name == "training":
        return np.zeros(NUM_CLASSES, np.float32)
    return (np.log(served_prior(name)) - np.log(np.clip(learnt, 1e-4, None))).astype(np.float32)


@torch.no_grad()
def learnt_prior(model: torch.nn.Module, train: list[Split], config: Config, samples: int) -> np.ndarray:
    """The model's mean predicted distribution over a draw of its training mix (centre views)."""
    pre = serving_preprocess_config(config)
    rng = np.random.default_rng(config.seed)
    plan = epoch_plan(train, config, rng)[:samples]
    means = []
    for start in range(0, len(plan), 128):
        batch = batch_tensors(train, plan[start : start + 128])
        logits = predict_logits(model, normalise(centre_views(batch["pixels"], batch["zoom"], pre.size), pre))
        means.append(logits.softmax(dim=1).sum(dim=0))
    return (torch.stack(means).sum(dim=0) / len(plan)).numpy()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the negative log-likelihood of ``labels``."""
    best_t, best_loss = 1.0, math.inf
    for t in np.arange(0.05, 4.0, 0.01):
        loss = float(F.cross_entropy(logits / t, labels))
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    return round(best_t, 3)


def calibrate(model: torch.nn.Module, val: list[Split], config: Config) -> tuple[float, int]:
    """Temperature and sample count from the validation galaxies with a clear vote majority.

    Galaxy10 itself keeps only galaxies whose votes clearly agree, and a served
    confidence should be the chance that the top class is right. Fitting against
    the soft vote distributions instead would teach the model to spread its
    probability as the crowd did, which under-states its accuracy on clear galaxies.
    """
    pre = serving_preprocess_config(config)
    minimum = config.calibration.min_vote_fraction
    logits, labels = [], []
    for split in val:
        has_votes = split.source.soft_weight >= MIN_COVERAGE
        # The GZ DECaLS validation folds choose models; they do not also fit the temperature.
        if not has_votes.any() or split.source.name in src.NOT_POOLED:
            continue
        clear = has_votes & (split.source.soft.max(axis=1) >= minimum)
        logits.append(split_logits(model, split, pre)[torch.from_numpy(clear)])
        labels.append(torch.from_numpy(split.source.soft[clear].argmax(axis=1)))
    if not logits:
        return 1.0, 0
    all_labels = torch.cat(labels)
    return fit_temperature(torch.cat(logits), all_labels), len(all_labels)


def choose_prior(model: torch.nn.Module, splits: dict[str, list[Split]], config: Config) -> dict[str, Any]:
    """Fold the configured prior into the head's bias; report pooled validation under every prior.

    The choice is made in the configuration, on purpose, not by the validation
    score: validation is SDSS-voted, with GZ2's class mix, not Galaxy10's.
    """
    settings = config.prior
    learnt = learnt_prior(model, splits["train"], config, settings.samples)
    pre = serving_preprocess_config(config)
    val_logits = [split_logits(model, split, pre) for split in splits["val"]]
    by_prior = {}
    for name in PRIORS:
        offset = torch.from_numpy(prior_adjustment(learnt, name))
        by_prior[name] = pooled_validation([v + offset for v in val_logits], splits["val"])
    adjustment = prior_adjustment(learnt, settings.served)
    with torch.no_grad():
        model._fc.bias += torch.from_numpy(adjustment)
    log.info("served prior %s; pooled validation by prior %s", settings.served, json.dumps(by_prior))
    return {
        "served": settings.served,
        "learnt": learnt.round(4).tolist(),
        "logit_adjustment": adjustment.round(4).tolist(),
        "pooled_validation_by_prior": by_prior,
    }
