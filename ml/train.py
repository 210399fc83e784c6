"""Train the Galaxy10 classifier from every reachable labelled source.

    python -m ml.train --out ml/runs/shipped            # the shipped model's run
    python -m ml.train --galaxy10-h5 Galaxy10_DECals.h5  # with the real Galaxy10 file

Writes ``model.pt`` (weights), ``run.json`` (configuration, splits, data
provenance, temperature, per-epoch metrics) and ``train.log`` to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from classifier.core.galaxy10 import NUM_CLASSES
from classifier.core.preprocessing import PreprocessConfig
from ml import sources as src
from ml.augment import augmented_views, centre_views, normalise
from ml.cache import cache_pixels, cached_fraction, source_inputs
from ml.config import add_data_arguments, load_config
from ml.experiments.teacher import TEACHER_SOURCE, group_targets
from ml.metrics import (
    GALAXY10_COUNTS,
    GROUP_MATRIX,
    MIN_COVERAGE,
    confusion_matrix,
    group_accuracy,
    group_vote_metrics,
    weighted_recall,
)
from ml.model import backbone_parameters, build_model, freeze_early_layers, head_parameters
from ml.vote_loss import VoteHead, vote_nll
from ml.votes import NUM_ANSWERS

log = logging.getLogger("ml.train")

PRIORS = ("training", "balanced", "galaxy10")


@dataclass
class Split:
    """One source's split, with its cached pixels.

    ``target_domain``: images from the survey the model serves (DECaLS).
    ``consistency``: unlabelled target-domain images, trained by agreement between two views.
    ``teacher``: (N, 4) group distributions from galamo's CNN (ml/experiments/teacher.py), or None.
    """

    source: src.SourceSet
    pixels: np.ndarray
    zoom: float
    target_domain: bool = False
    consistency: bool = False
    teacher: np.ndarray | None = None


def serving_preprocess_config(config: dict[str, Any]) -> PreprocessConfig:
    return PreprocessConfig(size=config["image_size"], crop_fraction=config["crops"]["galaxy10"])


def collect_sources(
    config: dict[str, Any],
    data_root: Path,
    galaxy10_h5: Path | None = None,
    folders: list[Path] | None = None,
    manifests: list[Path] | None = None,
) -> list[src.SourceSet]:
    crops = config["crops"]
    # Configurations written before the v2 label rule have no [labels]: they did not read t04.
    read_spiral = config.get("labels", {}).get("read_spiral", False)
    found: list[src.SourceSet] = []
    loaders = [
        ("gz2_votes_sdss", partial(src.load_gz2_hart, read_spiral=read_spiral), crops["gz2_hart"]),
        ("kaggle_gz_votes_sdss", partial(src.load_gz2_kaggle, read_spiral=read_spiral), crops["gz2_kaggle"]),
        ("gz1_sdss", src.load_gz1, crops["gz1"]),
        ("gz_decals_partial", src.load_gz_decals_partial, crops["gz_decals_partial"]),
    ]
    # Configurations written before the GZ DECaLS votes source have no switch: it stays out.
    if config["train"].get("gz_decals_votes", False):
        loaders.append(
            ("gz_decals_votes", partial(src.load_gz_decals_votes, config=config), crops["gz_decals_votes"])
        )
    for folder, loader, crop in loaders:
        if (data_root / folder).is_dir():
            found.append(loader(data_root / folder, crop))
        else:
            log.warning("source %s not found under %s; skipped", folder, data_root)
    if galaxy10_h5:
        found.append(src.load_galaxy10_h5(galaxy10_h5, crops["galaxy10"]))
    for folder in folders or []:
        found.append(src.load_folder(folder, crops["user"]))
    for manifest in manifests or []:
        found.append(src.load_csv_manifest(manifest, crops["user"]))
    return found


def provenance(source: src.SourceSet) -> dict[str, Any]:
    """Counts and a content checksum of the images and labels a source used."""
    digest = hashlib.sha256()
    for ref in source.images:
        if isinstance(ref, src.H5Image):
            digest.update(f"{ref.path}#{ref.index}".encode())
        else:
            digest.update(Path(ref).read_bytes())
    labels = hashlib.sha256(
        np.ascontiguousarray(source.soft).tobytes() + np.ascontiguousarray(source.group_targets).tobytes()
    ).hexdigest()
    return {
        "name": source.name,
        "images": len(source),
        "crop_fraction": source.crop_fraction,
        "images_sha256": digest.hexdigest(),
        "targets_sha256": labels,
        **{k: v for k, v in source.notes.items() if isinstance(v, int | float | str)},
    }


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
    settings: dict[str, Any],
) -> torch.Tensor:
    """``per_sample`` plus the terms of the unlabelled DECaLS rows: view consistency (``second``
    holds their second views' logits) and, with ``teacher_weight`` > 0, the teacher's groups."""
    pairs = batch["consistency"]
    teacher_weight = settings.get("teacher_weight", 0.0)
    if pairs.any():
        per_sample = per_sample.clone()
        per_sample[pairs] = per_sample[pairs] + settings["consistency_weight"] * consistency_loss(
            first[pairs], second
        )
    if teacher_weight > 0 and "teacher" in batch:
        taught = batch["has_teacher"]
        per_sample = per_sample.clone()
        per_sample[taught] = per_sample[taught] + teacher_weight * teacher_loss(
            first[taught], batch["teacher"][taught]
        )
    return per_sample


def _batch_tensors(splits: list[Split], picks: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    fields = ("soft", "soft_weight", "group_masks", "group_targets", "group_weights")
    out = {f: torch.from_numpy(np.stack([getattr(splits[s].source, f)[i] for s, i in picks])) for f in fields}
    # Only batches that hold GZ DECaLS rows carry vote counts; other rows count no votes,
    # which the Dirichlet-multinomial scores as exactly zero.
    if any(splits[s].source.votes is not None for s, _ in picks):
        no_votes = np.zeros(NUM_ANSWERS, np.float32)
        out["votes"] = torch.from_numpy(
            np.stack(
                [no_votes if splits[s].source.votes is None else splits[s].source.votes[i] for s, i in picks]
            )
        )
    out["pixels"] = torch.from_numpy(np.stack([splits[s].pixels[i] for s, i in picks]))
    out["zoom"] = torch.tensor([splits[s].zoom for s, _ in picks], dtype=torch.float32)
    out["target_domain"] = torch.tensor([splits[s].target_domain for s, _ in picks], dtype=torch.bool)
    out["consistency"] = torch.tensor([splits[s].consistency for s, _ in picks], dtype=torch.bool)
    taught = [splits[s].teacher is not None for s, _ in picks]
    # Only batches that hold taught rows carry the teacher's groups (none when it is off).
    if any(taught):
        out["has_teacher"] = torch.tensor(taught, dtype=torch.bool)
        out["teacher"] = torch.from_numpy(
            np.stack(
                [
                    splits[s].teacher[i] if splits[s].teacher is not None else np.zeros(4, np.float32)
                    for s, i in picks
                ]
            )
        )
    return out


def epoch_plan(train: list[Split], config: dict[str, Any], rng: np.random.Generator) -> list[tuple[int, int]]:
    """Which (split, row) pairs one epoch visits, shuffled."""
    plan: list[tuple[int, int]] = []
    settings = config["train"]
    for index, split in enumerate(train):
        n = len(split.source)
        if split.source.name == "gz1":
            strata = split.source.strata
            groups = np.unique(strata)
            per_group = settings["gz1_per_epoch"] // len(groups)
            for g in groups:
                members = np.flatnonzero(strata == g)
                picks = rng.choice(members, size=per_group, replace=len(members) < per_group)
                plan.extend((index, int(i)) for i in picks)
        elif split.source.name == "gz_decals_partial":
            plan.extend((index, i) for _ in range(settings["decals_partial_repeats"]) for i in range(n))
        else:
            plan.extend((index, i) for i in range(n))
    order = rng.permutation(len(plan))
    return [plan[i] for i in order]


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


@torch.no_grad()
def split_logits(model: torch.nn.Module, split: Split, pre: PreprocessConfig) -> torch.Tensor:
    outputs = []
    for start in range(0, len(split.source), 128):
        pixels = torch.from_numpy(split.pixels[start : start + 128])
        zoom = torch.full((len(pixels),), split.zoom)
        outputs.append(predict_logits(model, normalise(centre_views(pixels, zoom, pre.size), pre)))
    return torch.cat(outputs) if outputs else torch.zeros(0, NUM_CLASSES)


def dev_inputs(dev: src.SourceSet, pre: PreprocessConfig) -> torch.Tensor:
    """Galaxy10 DECaLS images through the serving preprocessing, exactly."""
    return torch.from_numpy(source_inputs(dev, pre)).permute(0, 3, 1, 2).contiguous()


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
def learnt_prior(
    model: torch.nn.Module, train: list[Split], config: dict[str, Any], samples: int
) -> np.ndarray:
    """The model's mean predicted distribution over a draw of its training mix (centre views)."""
    pre = serving_preprocess_config(config)
    rng = np.random.default_rng(config["seed"])
    plan = epoch_plan(train, config, rng)[:samples]
    means = []
    for start in range(0, len(plan), 128):
        batch = _batch_tensors(train, plan[start : start + 128])
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


def calibrate(model: torch.nn.Module, val: list[Split], config: dict[str, Any]) -> tuple[float, int]:
    """Temperature and sample count from the validation galaxies with a clear vote majority.

    Galaxy10 itself keeps only galaxies whose votes clearly agree, and a served
    confidence should be the chance that the top class is right. Fitting against
    the soft vote distributions instead would teach the model to spread its
    probability as the crowd did, which under-states its accuracy on clear galaxies.
    """
    pre = serving_preprocess_config(config)
    minimum = config["calibration"]["min_vote_fraction"]
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


def choose_prior(model: torch.nn.Module, splits: dict[str, list[Split]], config: dict[str, Any]) -> dict:
    """Fold the configured prior into the head's bias; report pooled validation under every prior.

    The choice is made in the configuration, on purpose, not by the validation
    score: validation is SDSS-voted, with GZ2's class mix, not Galaxy10's.
    """
    settings = config["prior"]
    learnt = learnt_prior(model, splits["train"], config, settings["samples"])
    pre = serving_preprocess_config(config)
    val_logits = [split_logits(model, split, pre) for split in splits["val"]]
    by_prior = {}
    for name in PRIORS:
        offset = torch.from_numpy(prior_adjustment(learnt, name))
        by_prior[name] = pooled_validation([v + offset for v in val_logits], splits["val"])
    adjustment = prior_adjustment(learnt, settings["served"])
    with torch.no_grad():
        model._fc.bias += torch.from_numpy(adjustment)
    log.info("served prior %s; pooled validation by prior %s", settings["served"], json.dumps(by_prior))
    return {
        "served": settings["served"],
        "learnt": learnt.round(4).tolist(),
        "logit_adjustment": adjustment.round(4).tolist(),
        "pooled_validation_by_prior": by_prior,
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def vote_soft_weight(counts: np.ndarray, settings: dict[str, Any]) -> np.ndarray:
    """The weight of a GZ DECaLS galaxy's vote-implied 10-class target: ``votes_soft_weight``
    times its smooth-or-featured vote count over ``votes_full_weight`` (at most 1), so a 5-vote
    galaxy's noisy target teaches a quarter as much as a 20-vote one's; 0 turns the soft
    targets off and leaves the vote likelihood."""
    from ml.votes import ANSWER_SLICES

    answered = counts[:, ANSWER_SLICES["smooth-or-featured"]].sum(axis=1)
    scale = np.minimum(1.0, answered / settings.get("votes_full_weight", 20))
    return (settings.get("votes_soft_weight", 0.0) * scale).astype(np.float32)


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


def save_best(out: Path, model: torch.nn.Module, vote_head: VoteHead | None) -> None:
    torch.save(model.state_dict(), out / "best.pt")
    if vote_head is not None:
        torch.save(vote_head.state_dict(), out / "vote_head.pt")


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


def prepare_splits(sources: list[src.SourceSet], config: dict[str, Any]) -> dict[str, list[Split]]:
    """Each source's train/validation/test split, cached pixels attached.

    With ``train.decals_partial = "adaptation"`` the Galaxy Zoo DECaLS training images
    lose their group targets (the three fractions contradict each other there) and
    train by view consistency only; their validation and test splits keep the
    fractions as a reported group error. With ``train.teacher_weight`` > 0 those training
    images also get galamo's group distribution as a low-weight target (ml/experiments/teacher.py).
    """
    side = round(config["image_size"] * config["cache_margin"])
    settings = config["train"]
    teacher_weight = settings.get("teacher_weight", 0.0)
    target_domain = set(settings["target_domain_sources"])
    splits: dict[str, list[Split]] = {"train": [], "val": [], "test": []}
    for source in sources:
        pixels = cache_pixels(source, side=side, margin=config["cache_margin"])
        zoom = source.crop_fraction / cached_fraction(source.crop_fraction, config["cache_margin"])
        for name, indices in src.split_indices(source, config).items():
            subset = source.subset(indices)
            adapt = (
                name == "train"
                and source.name == "gz_decals_partial"
                and settings["decals_partial"] == "adaptation"
            )
            if adapt:
                subset.group_weights[:] = 0.0
            if name == "train" and source.votes is not None:
                subset.soft_weight[:] = subset.soft_weight * vote_soft_weight(subset.votes, settings)
            taught = name == "train" and source.name == TEACHER_SOURCE and teacher_weight > 0
            teacher = group_targets(Path(settings["teacher_file"]), subset) if taught else None
            split = Split(subset, pixels[indices], zoom, source.name in target_domain, adapt, teacher)
            splits[name].append(split)
    return splits


def train(
    config: dict[str, Any],
    out: Path,
    data_root: Path,
    galaxy10_h5: Path | None = None,
    folders: list[Path] | None = None,
    manifests: list[Path] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "train.log", mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    settings = config["train"]
    # train.seed (default: the top-level seed) moves initialisation, batch order and augmentation
    # only; the split stays on the top-level seed, so runs of two seeds score the same galaxies.
    seed = settings.get("seed", config["seed"])
    torch.manual_seed(seed)
    torch.set_num_threads(settings["num_threads"])
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    pre = serving_preprocess_config(config)

    sources = collect_sources(config, data_root, galaxy10_h5, folders, manifests)
    if limit:
        sources = [s.subset(np.arange(min(limit, len(s)))) for s in sources]
    if not sources:
        raise SystemExit(f"no training source found under {data_root}")
    splits = prepare_splits(sources, config)

    weights = torch.from_numpy(class_weights(splits["train"], settings["balance_power"]))
    log.info("class weights %s", weights.numpy().round(3).tolist())
    model = build_model(config["image_size"])
    frozen = freeze_early_layers(model, settings["frozen_blocks"])
    likelihood_weight = settings.get("votes_likelihood_weight", 0.0)
    vote_head = make_vote_head(model, splits["train"], likelihood_weight)
    head = head_parameters(model) + ([] if vote_head is None else list(vote_head.parameters()))
    optimiser = torch.optim.AdamW(
        [
            {"params": head, "lr": settings["lr_head"]},
            {"params": backbone_parameters(model), "lr": settings["lr_backbone"]},
        ],
        weight_decay=settings["weight_decay"],
    )
    steps_per_epoch = math.ceil(
        len(epoch_plan(splits["train"], config, np.random.default_rng(0))) / settings["batch_size"]
    )
    total_steps = steps_per_epoch * settings["epochs"]
    # A step budget (0: none) shortens the whole schedule, for runs that must end by a deadline.
    if settings.get("max_steps"):
        total_steps = min(total_steps, settings["max_steps"])
    warmup = max(1, int(total_steps * settings["warmup_fraction"]))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: (
            min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))
        ),
    )

    history: list[dict[str, Any]] = []
    best_score, best_epoch = -math.inf, 0
    steps_done = 0
    bridge_target_domain = config["augment"]["bridge_target_domain"]
    select_on = settings.get("select_on", "sdss_pooled")
    started = time.time()
    for epoch in range(1, settings["epochs"] + 1):
        model.train()
        for module in frozen:
            module.eval()
        plan = epoch_plan(splits["train"], config, rng)
        running = 0.0
        bar = tqdm(range(0, len(plan), settings["batch_size"]), desc=f"epoch {epoch}", mininterval=10)
        for step, start in enumerate(bar, 1):
            batch = _batch_tensors(splits["train"], plan[start : start + settings["batch_size"]])
            bridge = None if bridge_target_domain else ~batch["target_domain"]
            views = augmented_views(
                batch["pixels"], batch["zoom"], pre.size, config["augment"], generator, bridge
            )
            pairs = batch["consistency"]
            if pairs.any():
                # Second views of the unlabelled DECaLS rows share the forward pass, and so
                # the batch-norm statistics, with the first.
                second = augmented_views(
                    batch["pixels"][pairs],
                    batch["zoom"][pairs],
                    pre.size,
                    config["augment"],
                    generator,
                    torch.zeros(int(pairs.sum()), dtype=torch.bool),
                )
                views = torch.cat([views, second])
            logits = model(normalise(views, pre))
            first = logits[: len(pairs)]
            per_sample = loss_terms(
                first, batch, weights, settings["group_loss_weight"], settings["agreement_power"]
            )
            per_sample = vote_terms(per_sample, vote_head, batch, likelihood_weight)
            loss = target_domain_terms(per_sample, first, logits[len(pairs) :], batch, settings).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / step:.3f}")
            steps_done += 1
            if steps_done >= total_steps:
                break
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": running / max(1, step),
            "seconds": round(time.time() - started),
        }
        val_logits = [split_logits(model, split, pre) for split in splits["val"]]
        for split, logits_ in zip(splits["val"], val_logits, strict=True):
            record[f"val/{split.source.name}"] = split_metrics(logits_, split.source)
        record["val/pooled"] = pooled_validation(val_logits, splits["val"])
        history.append(record)
        log.info(json.dumps(record))
        # A checkpoint per epoch: a run stopped early still leaves its latest weights.
        torch.save(model.state_dict(), out / "last.pt")
        score = selection_score(record, select_on)
        if score > best_score:
            best_score, best_epoch = score, epoch
            save_best(out, model, vote_head)
        print(json.dumps(record), flush=True)
        if steps_done >= total_steps:
            break

    model.load_state_dict(torch.load(out / "best.pt"))
    log.info("selected epoch %d (%s validation score %.4f)", best_epoch, select_on, best_score)
    prior = choose_prior(model, splits, config)
    temperature, calibration_samples = calibrate(model, splits["val"], config)
    log.info("calibration temperature %.3f", temperature)
    torch.save(model.state_dict(), out / "model.pt")
    run = {
        "config": config,
        "temperature": temperature,
        "calibration_samples": calibration_samples,
        "selected_epoch": best_epoch,
        "selected_on": select_on,
        "train_steps": steps_done,
        "prior": prior,
        "class_weights": weights.numpy().round(4).tolist(),
        "sources": [provenance(s) for s in sources],
        "splits": {name: {s.source.name: len(s.source) for s in parts} for name, parts in splits.items()},
        "history": history,
        "train_seconds": round(time.time() - started),
        "git_commit": git_commit(),
        "torch": torch.__version__,
    }
    (out / "run.json").write_text(json.dumps(run, indent=2))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_arguments(parser)
    parser.add_argument("--folder", type=Path, action="append", default=[])
    parser.add_argument("--csv", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path("ml/runs/latest"))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--limit", type=int, help="use at most N images per source (smoke runs)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="as ml.pipeline's"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from ml.pipeline import parse_override

    overrides = dict(parse_override(text) for text in args.overrides)
    if args.epochs:
        overrides["train.epochs"] = args.epochs
    config = load_config(args.config, overrides)
    train(config, args.out, args.data_root, args.galaxy10_h5, args.folder, args.csv, args.limit)


if __name__ == "__main__":
    main()
