"""Rebuild the shipped model end to end: train, export, evaluate, package.

    python -m ml.pipeline                      # everything, from ../shared/data
    python -m ml.pipeline --run ml/runs/shipped --skip-train
    python -m ml.pipeline --galaxy10-h5 Galaxy10_DECals.h5

Writes ml/models/galaxy10.tflite, its manifest galaxy10.json and MODEL_CARD.md,
and the confusion matrix and reliability diagram to static/model/ (the model page shows them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.core.galaxy_zoo import QUESTIONS
from classifier.core.manifest import ModelManifest
from ml import sources as src
from ml import votes
from ml.cache import source_inputs
from ml.calibration import calibrate
from ml.config import Config, add_data_arguments, load_config, parse_override
from ml.dataset import collect_sources, prepare_splits, serving_preprocess_config
from ml.decals_folds import VOTES_DIR
from ml.decals_folds import load as load_folds
from ml.decals_validation import FRACTION_MIN_VOTES, model_inputs
from ml.evaluate import (
    DEV_SET,
    TFLiteModel,
    dev_set,
    evaluate,
    evaluation_sets,
    plot_confusion,
    plot_reliability,
)
from ml.export import VOTE_FRACTIONS, export, load_vote_head
from ml.model import build_model
from ml.model_card import write_model_card
from ml.ood import NoGalaxiesError
from ml.ood import fit as fit_ood
from ml.train import train
from ml.vote_loss import VoteHead, expected_fractions

MODELS_DIR = Path(__file__).with_name("models")
# The figures are web assets: the model page shows them, so they live under the static root.
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
FIGURES = {"confusion_matrix": "model/confusion_matrix.png", "reliability": "model/reliability.png"}
MODEL_NAME = "galaxy10"
# int8 ships when it stays this close to float16 on every validation set.
INT8_TOLERANCE = 0.02
# The metrics entry of the vote-fraction errors on the DECaLS validation folds.
VOTE_FRACTIONS_SET = "decals_validation"

log = logging.getLogger("ml.pipeline")


def representative_inputs(config: Config, sources: list[src.SourceSet], count: int) -> np.ndarray:
    """Training-split images (never evaluation ones) to calibrate int8 ranges."""
    rng = np.random.default_rng(config.seed)
    pre = serving_preprocess_config(config)
    picked = []
    for source in sources:
        train_idx = src.split_indices(source, config)["train"]
        take = rng.choice(train_idx, size=min(len(train_idx), count // len(sources)), replace=False)
        picked.append(source_inputs(source.subset(take), pre))
    return np.concatenate(picked)


def torch_agreement(
    model: torch.nn.Module, tflite: TFLiteModel, images: np.ndarray, temperature: float
) -> float:
    with torch.no_grad():
        logits = model(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
        reference = torch.softmax(logits / temperature, dim=1).numpy()
    return float(np.abs(tflite(images) - reference).max())


def vote_agreement(
    model: torch.nn.Module, vote_head: VoteHead | None, tflite: TFLiteModel, images: np.ndarray
) -> float | None:
    """Largest difference between the file's vote fractions and PyTorch's (None without them)."""
    if vote_head is None or not tflite.has_votes:
        return None
    handle = vote_head.attach(model._fc)
    try:
        with torch.no_grad():
            model(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
            reference = expected_fractions(vote_head()).numpy()
    finally:
        handle.remove()
    return float(np.abs(tflite.votes(images) - reference).max())


def headline(results: dict[str, Any], split: str = "val") -> dict[str, float]:
    """top-1, 4-group and coarse accuracy of every labelled set of one split, for comparing exports."""
    return {
        f"{name}/{key}": metrics[key]
        for name, metrics in results.items()
        if name.startswith(f"{split}/")
        for key in ("top1", "group4", "coarse_accuracy")
        if key in metrics
    }


def vote_fraction_errors(tflite: TFLiteModel, data_root: Path, config: Config) -> dict[str, Any] | None:
    """The file's vote-fraction errors on the DECaLS validation folds (ml/decals_validation.py),
    when it has the vote output and the vote table is on disk."""
    if not tflite.has_votes or not (data_root / VOTES_DIR / "labels.csv").is_file():
        return None
    validation = load_folds(data_root, config)
    rows = np.flatnonzero(validation.validation)
    fractions = tflite.votes(model_inputs(data_root, validation, rows, config))
    return votes.fraction_errors(fractions, validation.table.counts[rows], FRACTION_MIN_VOTES)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config, getattr(args, "overrides", None))
    if args.skip_train:
        run = json.loads((args.run / "run.json").read_text())
        # The calibration rule may be newer than the run: refit it from the weights.
        config = Config.from_dict({**run["config"], "calibration": config.as_dict()["calibration"]})
    else:
        run = train(config, args.run, args.data_root, args.galaxy10_h5)
    size = config.image_size
    model = build_model(size, pretrained=False)
    model.load_state_dict(torch.load(args.run / "model.pt"))
    model.eval()
    vote_head = load_vote_head(args.run, model)
    sources = collect_sources(config, args.data_root, args.galaxy10_h5)
    if args.skip_train:
        splits = prepare_splits(sources, config)
        run["temperature"], run["calibration_samples"] = calibrate(model, splits["val"], config)
    temperature = run["temperature"]
    pre = serving_preprocess_config(config)

    calibration = representative_inputs(config, sources, config.export.representative_samples)
    # Decoded once, then scored for every export candidate. The candidates are compared on
    # validation only; the dev images are scored once, for the shipped file.
    sets = evaluation_sets(config, args.data_root, sources, ("val", "test"), with_dev=False)
    dev = dev_set(args.data_root, config)
    check_images = dev.inputs if dev is not None else calibration[:32]
    candidates: dict[str, dict[str, Any]] = {}
    for quantization in ("int8", "float16"):
        path = export(
            model,
            size,
            temperature,
            args.run / f"{MODEL_NAME}-{quantization}.tflite",
            quantization,
            calibration,
            vote_head,
        )
        tflite = TFLiteModel(path)
        candidates[quantization] = {
            "path": path,
            "results": evaluate(tflite, sets),
            "max_abs_diff_vs_torch": torch_agreement(model, tflite, check_images, temperature),
            "max_abs_vote_diff_vs_torch": vote_agreement(model, vote_head, tflite, check_images),
            "bytes": path.stat().st_size,
        }
        log.info(
            "%s: %s",
            quantization,
            json.dumps(
                {k: v for k, v in candidates[quantization].items() if k.startswith("max_abs") or k == "bytes"}
            ),
        )

    int8_scores, float16_scores = (headline(candidates[q]["results"]) for q in ("int8", "float16"))
    int8_losses = {
        k: round(float16_scores[k] - v, 4)
        for k, v in int8_scores.items()
        if v < float16_scores[k] - INT8_TOLERANCE
    }
    chosen = "float16" if int8_losses else "int8"
    shipped = candidates[chosen]
    if dev is not None:
        shipped["results"] = {**evaluate(TFLiteModel(shipped["path"]), [dev]), **shipped["results"]}
    errors = vote_fraction_errors(TFLiteModel(shipped["path"]), args.data_root, config)
    if errors:
        shipped["results"][VOTE_FRACTIONS_SET] = {"vote_fraction_mae": errors}

    models_dir: Path = args.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    model_path = models_dir / f"{MODEL_NAME}.tflite"
    shutil.copyfile(shipped["path"], model_path)
    digest = sha256_file(model_path)
    dev_report = shipped["results"].get(DEV_SET)
    if dev_report:
        (args.static_dir / FIGURES["confusion_matrix"]).parent.mkdir(parents=True, exist_ok=True)
        plot_confusion(
            np.array(dev_report["confusion_matrix"]),
            list(CLASS_NAMES),
            f"Galaxy10 DECaLS dev images (n={dev_report['n']}), {chosen} TFLite",
            args.static_dir / FIGURES["confusion_matrix"],
        )
        plot_reliability(
            dev_report["reliability"],
            f"Reliability, Galaxy10 DECaLS dev (n={dev_report['n']})",
            args.static_dir / FIGURES["reliability"],
        )

    created = dt.datetime.now(dt.UTC)
    manifest = ModelManifest.create(
        model_file=model_path.name,
        model_version=f"{created:%Y.%m.%d}-effnetlite0-{size}px-{chosen}-{digest[:8]}",
        sha256=digest,
        created_at=created.isoformat(timespec="seconds"),
        architecture="EfficientNet-Lite0 (ImageNet-pretrained), 10-class head",
        preprocessing=pre,
        input={"shape": [1, size, size, 3], "dtype": "float32", "batch_resizable": True},
        output={
            "calibration_temperature": temperature,
            "calibration_samples": run.get("calibration_samples"),
            "prior": run.get("prior", {}).get("served", "training"),
        },
        quantization=chosen,
        metrics={
            **shipped["results"],
            "export_check": {
                "max_abs_diff_vs_torch_on_dev_images": shipped["max_abs_diff_vs_torch"],
                "candidates": {
                    q: {
                        "bytes": c["bytes"],
                        "max_abs_diff_vs_torch": c["max_abs_diff_vs_torch"],
                        **(
                            {"max_abs_vote_diff_vs_torch": c["max_abs_vote_diff_vs_torch"]}
                            if c["max_abs_vote_diff_vs_torch"] is not None
                            else {}
                        ),
                        "val_pooled_top1": c["results"].get("val/pooled", {}).get("top1"),
                        "accuracy": headline(c["results"]),
                    }
                    for q, c in candidates.items()
                },
                "selection_rule": (
                    f"int8 ships unless it loses more than {INT8_TOLERANCE} on any validation accuracy"
                ),
                "int8_losses_beyond_tolerance": int8_losses,
            },
        },
        figures=FIGURES if dev_report else {},
        **({"galaxy_zoo": {"output": VOTE_FRACTIONS, "questions": QUESTIONS}} if vote_head else {}),
        provenance={
            "sources": run["sources"],
            "splits": run["splits"],
            "git_commit": run["git_commit"],
            "torch": run["torch"],
        },
        training={
            "config": config.as_dict(),
            "class_weights": run["class_weights"],
            "selected_epoch": run.get("selected_epoch"),
            "prior": run.get("prior"),
            "train_seconds": run["train_seconds"],
            "history": run["history"],
        },
    )
    manifest_path = models_dir / f"{MODEL_NAME}.json"
    manifest.write(manifest_path)
    # The out-of-distribution gate is fitted for this very model, on the packaged file.
    try:
        fit_ood(models_dir, args.data_root, galaxy10_h5=args.galaxy10_h5, config_path=args.config)
    except NoGalaxiesError as exc:
        # The manifest stays valid: serving reports in_distribution as unknown (docs/ood.md).
        log.warning("no out-of-distribution gate fitted: %s", exc)
    return write_card(models_dir, args.static_dir)


def write_card(models_dir: Path, static_dir: Path) -> dict[str, Any]:
    """MODEL_CARD.md from the packaged manifest in ``models_dir``; returns that manifest."""
    packaged = json.loads((models_dir / f"{MODEL_NAME}.json").read_text())
    write_model_card(packaged, models_dir / "MODEL_CARD.md", static_dir, peer_results(models_dir, packaged))
    return packaged


def peer_results(models_dir: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """ml/peer.py's comparison saved beside the model, if it was run for this very file."""
    path = models_dir / "peer.json"
    if not path.is_file():
        return None
    peer = json.loads(path.read_text())
    return peer if peer.get("model_sha256") == manifest["sha256"] else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_arguments(parser)
    parser.add_argument("--run", type=Path, default=Path("ml/runs/shipped"))
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="where to package the model")
    parser.add_argument(
        "--static-dir", type=Path, default=STATIC_DIR, help="static root that receives the figures"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=VALUE",
        help="override a config.toml value, e.g. --set train.epochs=2 (TOML syntax for the value)",
    )
    parser.add_argument("--skip-train", action="store_true", help="package an existing run")
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="only rewrite MODEL_CARD.md from the packaged manifest (after `make ood` refits the gate)",
    )
    args = parser.parse_args()
    args.overrides = dict(args.overrides)
    logging.basicConfig(level=logging.INFO)
    if args.card_only:
        write_card(args.models_dir, args.static_dir)
        return
    manifest = run_pipeline(args)
    print(json.dumps({"model_version": manifest["model_version"], "quantization": manifest["quantization"]}))


if __name__ == "__main__":
    main()
