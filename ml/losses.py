"""The training objective: supervised terms per sample, plus the target-domain and vote terms."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ml.config import TrainSettings
from ml.dataset import Split
from ml.metrics import GALAXY10_COUNTS, GROUP_MATRIX
from ml.vote_loss import VoteHead, vote_nll


def class_weights(train_splits: list[Split], power: float) -> np.ndarray:
    soft = np.concatenate([s.source.soft for s in train_splits])
    weight = np.concatenate([s.source.soft_weight for s in train_splits])
    prior = (soft * weight[:, None]).sum(axis=0) / max(float(weight.sum()), 1e-9) + 1e-3
    target = GALAXY10_COUNTS / GALAXY10_COUNTS.sum()
    return np.clip((target / prior) ** power, 0.25, 4.0).astype(np.float32)


def loss_terms(
    logits: torch.Tensor,
    batch: dict[str, torch.Tensor],
    weights: torch.Tensor,
    group_weight: float,
    agreement_power: float = 0.0,
) -> torch.Tensor:
    """Soft/hard cross-entropy plus group binary cross-entropy, summed per sample.

    ``agreement_power`` > 0 weights each soft target by its largest probability to that
    power: Galaxy10 keeps only galaxies whose votes clearly agree, so diffuse targets
    should teach less.
    """
    log_probs = F.log_softmax(logits, dim=1)
    balance = batch["soft"] @ weights
    agreement = batch["soft"].max(dim=1).values ** agreement_power
    soft = -(batch["soft"] * log_probs).sum(dim=1) * batch["soft_weight"] * balance * agreement
    probs = log_probs.exp()
    group_p = (probs[:, None, :] * batch["group_masks"]).sum(-1).clamp(1e-6, 1 - 1e-6)
    target = batch["group_targets"]
    group = -(target * group_p.log() + (1 - target) * (1 - group_p).log())
    return soft + group_weight * (group * batch["group_weights"]).sum(dim=1)


def consistency_loss(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the second view's prediction against the first's (held fixed), per sample.

    Unlabelled DECaLS images teach the model only that two views of one galaxy
    get one answer, so they shape its features for the served survey without
    claiming a class.
    """
    target = F.softmax(first.detach(), dim=1)
    return -(target * F.log_softmax(second, dim=1)).sum(dim=1)


def teacher_loss(logits: torch.Tensor, teacher_groups: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the model's 4-group distribution against the teacher's, per sample."""
    groups = F.softmax(logits, dim=1) @ torch.from_numpy(GROUP_MATRIX.astype(np.float32))
    return -(teacher_groups * groups.clamp_min(1e-6).log()).sum(dim=1)


def target_domain_terms(
    per_sample: torch.Tensor,
    first: torch.Tensor,
    second: torch.Tensor,
    batch: dict[str, torch.Tensor],
    settings: TrainSettings,
) -> torch.Tensor:
    """``per_sample`` plus the terms of the unlabelled DECaLS rows: view consistency (``second``
    holds their second views' logits) and, with ``teacher_weight`` > 0, the teacher's groups."""
    pairs = batch["consistency"]
    teacher_weight = settings.teacher_weight
    if pairs.any():
        per_sample = per_sample.clone()
        per_sample[pairs] = per_sample[pairs] + settings.consistency_weight * consistency_loss(
            first[pairs], second
        )
    if teacher_weight > 0 and "teacher" in batch:
        taught = batch["has_teacher"]
        per_sample = per_sample.clone()
        per_sample[taught] = per_sample[taught] + teacher_weight * teacher_loss(
            first[taught], batch["teacher"][taught]
        )
    return per_sample


def make_vote_head(model: torch.nn.Module, train: list[Split], weight: float) -> VoteHead | None:
    """A vote head reading the classifier's features, when the training data has vote counts and
    ``votes_likelihood_weight`` > 0."""
    if weight <= 0 or not any(s.source.votes is not None for s in train):
        return None
    head = VoteHead(model._fc.in_features)
    head.attach(model._fc)
    return head


def vote_terms(
    per_sample: torch.Tensor, vote_head: VoteHead | None, batch: dict[str, torch.Tensor], weight: float
) -> torch.Tensor:
    """``per_sample`` plus the weighted Dirichlet-multinomial vote loss of the batch's first views."""
    if vote_head is None or "votes" not in batch:
        return per_sample
    outputs = vote_head()[: len(per_sample)]
    return per_sample + weight * vote_nll(outputs, batch["votes"])
