"""One training run per protocol change, each with one switch changed, at equal compute:
a fix set back to its v1 value, or an option left off in the committed configuration turned on.

    python -m ml.experiments.ablate --epochs 4 --out ml/runs/ablations            # every variant
    python -m ml.experiments.ablate --epochs 4 --only reference --only no-t04     # some of them

Each variant trains with the committed configuration (``ml/config.toml``, the v2 protocol)
except for its overrides, the same seed, split and schedule, and is then scored on the same
pooled validation galaxies under the reference (v2) label rule, so a variant that changes the
labels is judged against the same answers as the others. The score is PyTorch's, at the epoch
that training selected (best pooled validation top-1), before the served prior and the
calibration: what the change does to what the network learns. The served prior is compared
post hoc by ``python -m ml.experiments.compare --prior-samples``. The GZ DECaLS validation group error is
reported beside it: the one labelled signal from the served survey, once as GZ DECaLS renders it
and once re-rendered as Galaxy10 does (``ml.renderings.to_galaxy10_rendering``), since users
upload both. The 30 dev images are never scored.

    python -m ml.experiments.ablate --out ml/runs/ablations --rescore   # finished variants, new scores

``--rescore`` scores the saved ``best.pt`` of every variant that has an ablation.json again and
rewrites its scores, so finished runs gain new columns without training; it trains nothing.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ml.config import Config, Labels, add_data_arguments, load_config
from ml.dataset import collect_sources, prepare_splits, serving_preprocess_config
from ml.model import build_model
from ml.renderings import to_galaxy10_rendering
from ml.scoring import pooled_validation, split_logits, split_metrics
from ml.train import train

# name -> (what it sets back, overrides). The reference is the committed configuration.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "reference": ("the committed configuration (v2 protocol, GZ DECaLS votes, DECaLS selection)", {}),
    "no-t04": (
        "(1) t04 not read: armless disks split between the spiral classes",
        {"labels.read_spiral": False},
    ),
    "no-agreement": ("(2) no agreement weighting of soft targets", {"train.agreement_power": 0.0}),
    "decals-labels": (
        "(3) GZ DECaLS images as their three group targets instead of consistency",
        {"train.decals_partial": "labels"},
    ),
    "scale-matched": (
        "(5) SDSS crops matched to Galaxy10's galaxy size (GZ2 0.65, GZ1 0.51)",
        {"crops.gz2_hart": 0.65, "crops.gz2_kaggle": 0.65, "crops.gz1": 0.51},
    ),
    "bridge-on-decals": (
        "(6) SDSS-to-DECaLS augmentations applied to DECaLS images too",
        {"augment.bridge_target_domain": True},
    ),
    "160px": ("(7) 160 px input instead of 128", {"image_size": 160}),
    "teacher": (
        "(teacher) added: galamo's 4-group distribution, weight 0.25, on the GZ DECaLS training images",
        {"train.teacher_weight": 0.25},
    ),
    # The committed configuration learns from the GZ DECaLS votes outside the DECaLS validation
    # folds (ml/decals_folds.py) and keeps the epoch with the best DECaLS validation: each of
    # these takes one of those elements away.
    "no-votes": (
        "(votes) taken out: no GZ DECaLS vote counts, epoch chosen on pooled SDSS validation",
        {"train.gz_decals_votes": False, "train.select_on": "sdss_pooled"},
    ),
    "no-vote-likelihood": (
        "(vote likelihood) taken out: the votes' 10-class targets only, no vote head",
        {"train.votes_likelihood_weight": 0.0},
    ),
    "gz2-votes": (
        "(GZ2 votes) added: Galaxy Zoo 2 answer counts of the shared questions also train the vote head",
        {"train.gz2_votes": True},
    ),
    "no-vote-targets": (
        "(votes source) taken out: the votes through the vote head only, no 10-class targets",
        {"train.votes_soft_weight": 0.0},
    ),
    "sdss-selection": (
        "(DECaLS selection) taken out: the epoch chosen on pooled SDSS validation",
        {"train.select_on": "sdss_pooled"},
    ),
    "rendering": (
        (
            "(rendering) added: colour, sky and scale augmentation between the GZ DECaLS and Galaxy10 "
            "renderings on DECaLS images"
        ),
        {"augment.rendering_probability": 0.5},
    ),
}


@torch.no_grad()
def score(config: Config, reference_labels: Labels, weights: Path, data_root: Path) -> dict[str, Any]:
    """Pooled validation of ``weights`` (trained with ``config``) under the reference label rule,
    and agreement with the vote-implied class on the GZ DECaLS validation folds."""
    # Every variant is scored on the DECaLS validation folds, whether it trained on votes or not.
    scoring = replace(config, labels=reference_labels, train=replace(config.train, gz_decals_votes=True))
    val = prepare_splits(collect_sources(scoring, data_root), scoring)["val"]
    model = build_model(config.image_size, pretrained=False)
    model.load_state_dict(torch.load(weights))
    model.eval()
    pre = serving_preprocess_config(config)
    with torch.no_grad():
        logits = [split_logits(model, split, pre) for split in val]
    scores = pooled_validation(logits, val)
    # The one labelled signal from the served survey: GZ DECaLS validation vote fractions.
    for split, split_logits_ in zip(val, logits, strict=True):
        if split.source.name == "gz_decals_partial":
            metrics = split_metrics(split_logits_, split.source)
            scores["gz_decals_group_error"] = metrics.get("group_abs_error")
        if split.source.name == "gz_decals_votes":
            scores["decals_votes_top1"] = split_metrics(split_logits_, split.source).get("top1")
            rendered = split_logits(model, split, pre, to_galaxy10_rendering)
            scores["decals_votes_top1_galaxy10_rendering"] = split_metrics(rendered, split.source).get("top1")
    return scores


def variant_config(name: str, args: argparse.Namespace) -> Config:
    _, overrides = VARIANTS[name]
    threads = {"train.num_threads": args.threads} if args.threads else {}
    return load_config(args.config, {**overrides, "train.epochs": args.epochs, **threads})


def rescore(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """A finished variant's ablation.json with its scores recomputed from its best.pt."""
    out = args.out / name
    result = json.loads((out / "ablation.json").read_text())
    run = out / "run.json"
    # The configuration it trained with, as recorded; a run from before run.json, as it would be now.
    config = (
        Config.from_dict(json.loads(run.read_text())["config"])
        if run.is_file()
        else variant_config(name, args)
    )
    reference_labels = load_config(args.config).labels
    result["val_pooled_v2_labels"] = score(config, reference_labels, out / "best.pt", args.data_root)
    (out / "ablation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def run_variant(name: str, args: argparse.Namespace) -> dict[str, Any]:
    reason, overrides = VARIANTS[name]
    config = variant_config(name, args)
    reference_labels = load_config(args.config).labels
    out = args.out / name
    run = train(config, out, args.data_root)
    result = {
        "change": reason,
        "overrides": overrides,
        "epochs": args.epochs,
        "selected_epoch": run["selected_epoch"],
        "train_seconds": run["train_seconds"],
        "val_pooled_v2_labels": score(config, reference_labels, out / "best.pt", args.data_root),
    }
    (out / "ablation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    reference = results.get("reference", {}).get("val_pooled_v2_labels", {})
    lines = [
        (
            "| variant | change against the reference | n | top-1 | vs reference | class-balanced "
            "| Galaxy10-weighted | 4-group | GZ DECaLS group error | DECaLS votes top-1 "
            "| DECaLS votes top-1, Galaxy10 rendering |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        m = result["val_pooled_v2_labels"]
        delta = (
            "" if name == "reference" or not reference else f"{100 * (m['top1'] - reference['top1']):+.1f}"
        )
        lines.append(
            f"| {name} | {result['change']} | {m['n']} | {100 * m['top1']:.1f}% | {delta} "
            f"| {100 * m['balanced_accuracy']:.1f}% | {100 * m['galaxy10_weighted_accuracy']:.1f}% "
            f"| {100 * m['group4']:.1f}% | {_error(m.get('gz_decals_group_error'))} "
            f"| {_error(m.get('decals_votes_top1'))} "
            f"| {_error(m.get('decals_votes_top1_galaxy10_rendering'))} |"
        )
    return "\n".join(lines)


def _error(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("ml/runs/ablations"))
    parser.add_argument("--only", action="append", choices=sorted(VARIANTS), help="run only these variants")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: train.num_threads)")
    parser.add_argument(
        "--rescore", action="store_true", help="score finished variants again from best.pt; train none"
    )
    args = parser.parse_args()
    results = {}
    for name in args.only or VARIANTS:
        done = args.out / name / "ablation.json"
        if args.rescore:
            if not done.is_file():
                continue
            results[name] = rescore(name, args)
        else:
            # A finished variant is read back, so a stopped sweep resumes where it stopped.
            results[name] = json.loads(done.read_text()) if done.is_file() else run_variant(name, args)
        print(table(results), flush=True)
    (args.out / "ablations.md").write_text(table(results) + "\n")


if __name__ == "__main__":
    main()
