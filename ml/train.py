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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from classifier.galaxy10 import NUM_CLASSES
from classifier.preprocessing import PreprocessConfig
from ml import sources as src
from ml.augment import augmented_views, centre_views, normalise
from ml.cache import cache_pixels, cached_fraction, source_inputs
from ml.config import add_data_arguments, load_config
from ml.metrics import GROUP_MATRIX, group_vote_metrics
from ml.model import backbone_parameters, build_model, freeze_early_layers, head_parameters

log = logging.getLogger("ml.train")

# Galaxy10 DECaLS class sizes: the prior the class weights steer towards.
GALAXY10_COUNTS = np.array([1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873], float)


@dataclass
class Split:
    """One source's split, with its cached pixels."""

    source: src.SourceSet
    pixels: np.ndarray
    zoom: float


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
    found: list[src.SourceSet] = []
    loaders = [
        ("gz2_votes_sdss", src.load_gz2_hart, crops["gz2_hart"]),
        ("kaggle_gz_votes_sdss", src.load_gz2_kaggle, crops["gz2_kaggle"]),
        ("gz1_sdss", src.load_gz1, crops["gz1"]),
        ("gz_decals_partial", src.load_gz_decals_partial, crops["gz_decals_partial"]),
    ]
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
    soft_rows = [s.source.soft[s.source.soft_weight > 0] for s in train_splits]
    prior = np.concatenate(soft_rows).mean(axis=0) + 1e-3
    target = GALAXY10_COUNTS / GALAXY10_COUNTS.sum()
    return np.clip((target / prior) ** power, 0.25, 4.0).astype(np.float32)


def loss_terms(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], weights: torch.Tensor, group_weight: float
) -> torch.Tensor:
    """Soft/hard cross-entropy plus group binary cross-entropy, summed per sample."""
    log_probs = F.log_softmax(logits, dim=1)
    balance = batch["soft"] @ weights
    soft = -(batch["soft"] * log_probs).sum(dim=1) * batch["soft_weight"] * balance
    probs = log_probs.exp()
    group_p = (probs[:, None, :] * batch["group_masks"]).sum(-1).clamp(1e-6, 1 - 1e-6)
    target = batch["group_targets"]
    group = -(target * group_p.log() + (1 - target) * (1 - group_p).log())
    return soft + group_weight * (group * batch["group_weights"]).sum(dim=1)


def _batch_tensors(splits: list[Split], picks: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    fields = ("soft", "soft_weight", "group_masks", "group_targets", "group_weights")
    out = {f: torch.from_numpy(np.stack([getattr(splits[s].source, f)[i] for s, i in picks])) for f in fields}
    out["pixels"] = torch.from_numpy(np.stack([splits[s].pixels[i] for s, i in picks]))
    out["zoom"] = torch.tensor([splits[s].zoom for s, _ in picks], dtype=torch.float32)
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
    has_soft = source.soft_weight > 0
    if has_soft.any():
        target = source.soft[has_soft]
        p = probs[has_soft]
        metrics["top1"] = float((p.argmax(1) == target.argmax(1)).mean())
        metrics["cross_entropy"] = float(-(target * np.log(p + 1e-9)).sum(1).mean())
        metrics["group4"] = float(((p @ GROUP_MATRIX).argmax(1) == (target @ GROUP_MATRIX).argmax(1)).mean())
    metrics.update(group_vote_metrics(probs, source.group_masks, source.group_targets, source.group_weights))
    return metrics


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
        has_votes = split.source.soft_weight > 0
        if not has_votes.any():
            continue
        clear = has_votes & (split.source.soft.max(axis=1) >= minimum)
        logits.append(split_logits(model, split, pre)[torch.from_numpy(clear)])
        labels.append(torch.from_numpy(split.source.soft[clear].argmax(axis=1)))
    if not logits:
        return 1.0, 0
    all_labels = torch.cat(labels)
    return fit_temperature(torch.cat(logits), all_labels), len(all_labels)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def prepare_splits(sources: list[src.SourceSet], config: dict[str, Any]) -> dict[str, list[Split]]:
    side = round(config["image_size"] * config["cache_margin"])
    fractions = tuple(config["split"]["fractions"])
    splits: dict[str, list[Split]] = {"train": [], "val": [], "test": []}
    for source in sources:
        pixels = cache_pixels(source, side=side, margin=config["cache_margin"])
        zoom = source.crop_fraction / cached_fraction(source.crop_fraction, config["cache_margin"])
        parts = src.stratified_split(source.strata, fractions, config["seed"])
        for name, indices in zip(("train", "val", "test"), parts, strict=True):
            splits[name].append(Split(source.subset(indices), pixels[indices], zoom))
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
    torch.manual_seed(config["seed"])
    torch.set_num_threads(settings["num_threads"])
    rng = np.random.default_rng(config["seed"])
    generator = torch.Generator().manual_seed(config["seed"])
    pre = serving_preprocess_config(config)

    sources = collect_sources(config, data_root, galaxy10_h5, folders, manifests)
    if limit:
        sources = [s.subset(np.arange(min(limit, len(s)))) for s in sources]
    if not sources:
        raise SystemExit(f"no training source found under {data_root}")
    splits = prepare_splits(sources, config)
    dev_root = data_root / "galaxy10_decals_dev"
    dev = src.load_galaxy10_dev(dev_root, config["crops"]["galaxy10"]) if dev_root.is_dir() else None
    dev_x = dev_inputs(dev, pre) if dev else None

    weights = torch.from_numpy(class_weights(splits["train"], settings["balance_power"]))
    log.info("class weights %s", weights.numpy().round(3).tolist())
    model = build_model(config["image_size"])
    frozen = freeze_early_layers(model, settings["frozen_blocks"])
    optimiser = torch.optim.AdamW(
        [
            {"params": head_parameters(model), "lr": settings["lr_head"]},
            {"params": backbone_parameters(model), "lr": settings["lr_backbone"]},
        ],
        weight_decay=settings["weight_decay"],
    )
    steps_per_epoch = math.ceil(
        len(epoch_plan(splits["train"], config, np.random.default_rng(0))) / settings["batch_size"]
    )
    total_steps = steps_per_epoch * settings["epochs"]
    warmup = max(1, int(total_steps * settings["warmup_fraction"]))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: (
            min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))
        ),
    )

    history: list[dict[str, Any]] = []
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
            views = augmented_views(batch["pixels"], batch["zoom"], pre.size, config["augment"], generator)
            loss = loss_terms(
                model(normalise(views, pre)), batch, weights, settings["group_loss_weight"]
            ).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / step:.3f}")
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": running / max(1, step),
            "seconds": round(time.time() - started),
        }
        for split in splits["val"]:
            record[f"val/{split.source.name}"] = split_metrics(split_logits(model, split, pre), split.source)
        if dev is not None:
            record["dev/galaxy10_decals"] = split_metrics(predict_logits(model, dev_x), dev)
        history.append(record)
        log.info(json.dumps(record))
        # A checkpoint per epoch: a run stopped early still leaves its latest weights.
        torch.save(model.state_dict(), out / "model.pt")
        print(json.dumps(record), flush=True)

    temperature, calibration_samples = calibrate(model, splits["val"], config)
    log.info("calibration temperature %.3f", temperature)
    torch.save(model.state_dict(), out / "model.pt")
    run = {
        "config": config,
        "temperature": temperature,
        "calibration_samples": calibration_samples,
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    overrides = {"train.epochs": args.epochs} if args.epochs else {}
    config = load_config(args.config, overrides)
    train(config, args.out, args.data_root, args.galaxy10_h5, args.folder, args.csv, args.limit)


if __name__ == "__main__":
    main()
