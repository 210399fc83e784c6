"""Train the Galaxy10 classifier from every reachable labelled source.

    python -m ml.train --out ml/runs/shipped            # the shipped model's run
    python -m ml.train --galaxy10-h5 Galaxy10_DECals.h5  # with the real Galaxy10 file

Writes ``model.pt`` (weights), ``run.json`` (configuration, splits, data
provenance, temperature, per-epoch metrics) and ``train.log`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ml.augment import augmented_views, normalise
from ml.calibration import calibrate, choose_prior
from ml.config import Config, TrainSettings, add_data_arguments, load_config, parse_override
from ml.dataset import (
    Split,
    batch_tensors,
    collect_sources,
    epoch_plan,
    prepare_splits,
    serving_preprocess_config,
)
from ml.losses import class_weights, loss_terms, make_vote_head, target_domain_terms, vote_terms
from ml.model import backbone_parameters, build_model, freeze_early_layers, head_parameters
from ml.provenance import git_commit, provenance
from ml.scoring import pooled_validation, selection_score, split_logits, split_metrics
from ml.vote_loss import VoteHead

log = logging.getLogger("ml.train")


def save_best(out: Path, model: torch.nn.Module, vote_head: VoteHead | None) -> None:
    torch.save(model.state_dict(), out / "best.pt")
    if vote_head is not None:
        torch.save(vote_head.state_dict(), out / "vote_head.pt")


def _optimiser(
    model: torch.nn.Module, vote_head: VoteHead | None, settings: TrainSettings
) -> torch.optim.AdamW:
    """AdamW with the head's learning rate for the classifier head (and the vote head), the
    backbone's for the unfrozen blocks."""
    head = head_parameters(model) + ([] if vote_head is None else list(vote_head.parameters()))
    return torch.optim.AdamW(
        [
            {"params": head, "lr": settings.lr_head},
            {"params": backbone_parameters(model), "lr": settings.lr_backbone},
        ],
        weight_decay=settings.weight_decay,
    )


def _schedule(
    optimiser: torch.optim.Optimizer, total_steps: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then a cosine decay that reaches zero at ``total_steps``."""
    warmup = max(1, int(total_steps * warmup_fraction))
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: (
            min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))
        ),
    )


def _total_steps(train_splits: list[Split], config: Config) -> int:
    settings = config.train
    steps_per_epoch = math.ceil(
        len(epoch_plan(train_splits, config, np.random.default_rng(0))) / settings.batch_size
    )
    total = steps_per_epoch * settings.epochs
    # A step budget (0: none) shortens the whole schedule, for runs that must end by a deadline.
    return min(total, settings.max_steps) if settings.max_steps else total


def _batch_loss(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    config: Config,
    generator: torch.Generator,
    weights: torch.Tensor,
    vote_head: VoteHead | None,
) -> torch.Tensor:
    """The mean training loss of one batch of augmented views."""
    pre = serving_preprocess_config(config)
    settings = config.train
    bridge = None if config.augment.bridge_target_domain else ~batch["target_domain"]
    views = augmented_views(batch["pixels"], batch["zoom"], pre.size, config.augment, generator, bridge)
    pairs = batch["consistency"]
    if pairs.any():
        # Second views of the unlabelled DECaLS rows share the forward pass, and so
        # the batch-norm statistics, with the first.
        second = augmented_views(
            batch["pixels"][pairs],
            batch["zoom"][pairs],
            pre.size,
            config.augment,
            generator,
            torch.zeros(int(pairs.sum()), dtype=torch.bool),
        )
        views = torch.cat([views, second])
    logits = model(normalise(views, pre))
    first = logits[: len(pairs)]
    per_sample = loss_terms(first, batch, weights, settings.group_loss_weight, settings.agreement_power)
    per_sample = vote_terms(per_sample, vote_head, batch, settings.votes_likelihood_weight)
    return target_domain_terms(per_sample, first, logits[len(pairs) :], batch, settings).mean()


def _validation_record(model: torch.nn.Module, val: list[Split], config: Config) -> dict[str, Any]:
    """Each validation split's metrics and the pooled SDSS validation, as an epoch records them."""
    pre = serving_preprocess_config(config)
    logits = [split_logits(model, split, pre) for split in val]
    record = {
        f"val/{split.source.name}": split_metrics(out, split.source)
        for split, out in zip(val, logits, strict=True)
    }
    record["val/pooled"] = pooled_validation(logits, val)
    return record


def train(
    config: Config,
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
    settings = config.train
    seed = config.training_seed
    torch.manual_seed(seed)
    torch.set_num_threads(settings.num_threads)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)

    sources = collect_sources(config, data_root, galaxy10_h5, folders, manifests)
    if limit:
        sources = [s.subset(np.arange(min(limit, len(s)))) for s in sources]
    if not sources:
        raise SystemExit(f"no training source found under {data_root}")
    splits = prepare_splits(sources, config)

    weights = torch.from_numpy(class_weights(splits["train"], settings.balance_power))
    log.info("class weights %s", weights.numpy().round(3).tolist())
    model = build_model(config.image_size)
    frozen = freeze_early_layers(model, settings.frozen_blocks)
    vote_head = make_vote_head(model, splits["train"], settings.votes_likelihood_weight)
    optimiser = _optimiser(model, vote_head, settings)
    total_steps = _total_steps(splits["train"], config)
    schedule = _schedule(optimiser, total_steps, settings.warmup_fraction)

    history: list[dict[str, Any]] = []
    best_score, best_epoch = -math.inf, 0
    steps_done = 0
    select_on = settings.select_on
    started = time.time()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        for module in frozen:
            module.eval()
        plan = epoch_plan(splits["train"], config, rng)
        running = 0.0
        bar = tqdm(range(0, len(plan), settings.batch_size), desc=f"epoch {epoch}", mininterval=10)
        for step, start in enumerate(bar, 1):
            batch = batch_tensors(splits["train"], plan[start : start + settings.batch_size])
            loss = _batch_loss(model, batch, config, generator, weights, vote_head)
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
            **_validation_record(model, splits["val"], config),
        }
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
        "config": config.as_dict(),
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
    overrides = dict(parse_override(text) for text in args.overrides)
    if args.epochs:
        overrides["train.epochs"] = args.epochs
    config = load_config(args.config, overrides)
    train(config, args.out, args.data_root, args.galaxy10_h5, args.folder, args.csv, args.limit)


if __name__ == "__main__":
    main()
