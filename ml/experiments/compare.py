"""Score TFLite models on the same held-out images with the same reference labels.

    python -m ml.experiments.compare ml/models/galaxy10.tflite ml/runs/v2/models/galaxy10.tflite \\
        --out ml/runs/compare.json

Every model sees the validation and test splits of every source exactly as
training split them (the split never depends on the label rule), through the
serving preprocessing. Vote-labelled galaxies are scored against their hard
vote majority under both label rules: v1 (the shipped model's: t04 ignored,
every galaxy) and v2 (t04 read: galaxies whose votes Galaxy10 covers at least
half of). The 30 DECaLS dev images are left out: they are reported once, by
the pipeline, for the model it ships.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ml import sources as src
from ml.cache import source_inputs
from ml.calibration import PRIORS, prior_adjustment
from ml.config import Config, Labels, add_data_arguments, load_config
from ml.dataset import Split, collect_sources, epoch_plan, serving_preprocess_config
from ml.evaluate import EvaluationSet, TFLiteModel, evaluate, evaluation_sets, pooled_report
from ml.metrics import MIN_COVERAGE

LABEL_RULES = {"v1": False, "v2": True}
COLUMNS = ("n", "top1", "top2", "group4", "balanced_accuracy", "galaxy10_weighted_accuracy", "ece")


def relabelled(sets: list[EvaluationSet], by_name: dict[str, src.SourceSet]) -> list[EvaluationSet]:
    """The same images (same keys, same inputs) with another label rule's targets."""
    out = []
    for evaluation in sets:
        name = evaluation.name.split("/", 1)[1]
        other = by_name[name]
        index = {key: i for i, key in enumerate(other.keys)}
        rows = [index[key] for key in evaluation.source.keys]
        out.append(EvaluationSet(evaluation.name, other.subset(rows), evaluation.inputs))
    return out


def compare(models: list[Path], config: Config, data_root: Path, prior_samples: int = 0) -> dict[str, Any]:
    """Per model: metrics under each label rule, and (with ``prior_samples``) under each prior."""
    results: dict[str, Any] = {}
    sets_by_rule: dict[str, list[EvaluationSet]] = {}
    base: list[EvaluationSet] | None = None
    found: list[src.SourceSet] = []
    for rule, read_spiral in LABEL_RULES.items():
        rule_config = replace(config, labels=Labels(read_spiral=read_spiral))
        found = collect_sources(rule_config, data_root)
        if base is None:
            base = evaluation_sets(rule_config, data_root, found, ("val", "test"), with_dev=False)
        sets_by_rule[rule] = relabelled(base, {s.name: s for s in found})
    draw = training_draw(config, found, prior_samples) if prior_samples else None
    for model_path in models:
        model = TFLiteModel(model_path)
        size = model.interpreter.get_input_details()[0]["shape"][1]
        if size != config.image_size:
            raise SystemExit(f"{model_path}: input {size} px, the evaluation sets {config.image_size} px")
        results[str(model_path)] = {rule: evaluate(model, sets) for rule, sets in sets_by_rule.items()}
        if draw is not None:
            results[str(model_path)]["priors_v2_labels"] = prior_ablation(model, draw, sets_by_rule["v2"])
    return results


def training_draw(config: Config, found: list[src.SourceSet], samples: int) -> np.ndarray:
    """Model inputs for ``samples`` training images drawn as one epoch draws them."""
    train = [s.subset(src.split_indices(s, config)["train"]) for s in found]
    splits = [Split(source, np.zeros(0, np.uint8), 1.0) for source in train]
    plan = epoch_plan(splits, config, np.random.default_rng(config.seed))[:samples]
    pre = serving_preprocess_config(config)
    inputs = []
    for index, split in enumerate(splits):
        rows = [row for s, row in plan if s == index]
        if rows:
            inputs.append(source_inputs(split.source.subset(rows), pre))
    return np.concatenate(inputs)


def prior_ablation(
    model: TFLiteModel, draw: np.ndarray, sets: list[EvaluationSet]
) -> dict[str, dict[str, Any]]:
    """Pooled validation and test of one exported model under each served prior, post hoc.

    The prior the file learnt is its mean output over a training draw; the
    adjustment multiplies its probabilities by served / learnt, as the
    training-side logit adjustment does before export.
    """
    learnt = model(draw).mean(axis=0)
    outputs = {evaluation.name: model(evaluation.inputs) for evaluation in sets}
    results: dict[str, dict[str, Any]] = {}
    for prior in PRIORS:
        ratio = np.exp(prior_adjustment(learnt, prior))
        for split in ("val", "test"):
            parts = []
            for evaluation in sets:
                if evaluation.name.startswith(f"{split}/") and (evaluation.source.soft_weight > 0).any():
                    probs = outputs[evaluation.name] * ratio
                    parts.append((probs / probs.sum(axis=1, keepdims=True), evaluation.source))
            results.setdefault(prior, {})[split] = pooled_report(parts)
    return results


def table(results: dict[str, Any], names: list[str]) -> str:
    """A markdown table of the pooled rows, one line per model, split and label rule."""
    lines = [
        (
            "| model | labels | split | n | top-1 (95% interval) | top-2 | 4-group | class-balanced "
            "| Galaxy10-weighted | ECE | GZ1 coarse |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, by_rule in zip(names, results.values(), strict=True):
        for rule in LABEL_RULES:
            metrics = by_rule[rule]
            for split in ("val", "test"):
                pooled = metrics.get(f"{split}/pooled", {})
                coarse = metrics.get(f"{split}/gz1", {}).get("coarse_accuracy")
                low, high = pooled.get("top1_interval95", (np.nan, np.nan))
                lines.append(
                    f"| {name} | {rule} | {split} | {pooled.get('n')} | {100 * pooled['top1']:.1f}% "
                    f"({100 * low:.0f}-{100 * high:.0f}) | {100 * pooled['top2']:.1f}% "
                    f"| {100 * pooled['group4']:.1f}% | {100 * pooled['balanced_accuracy']:.1f}% "
                    f"| {100 * pooled['galaxy10_weighted_accuracy']:.1f}% | {pooled['ece']:.3f} "
                    f"| {'' if coarse is None else f'{100 * coarse:.1f}%'} |"
                )
    return "\n".join(lines)


def prior_table(results: dict[str, Any], names: list[str]) -> str:
    lines = [
        "| model | served prior | split | top-1 | class-balanced | Galaxy10-weighted | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, by_rule in zip(names, results.values(), strict=True):
        for prior, by_split in by_rule.get("priors_v2_labels", {}).items():
            for split, m in by_split.items():
                lines.append(
                    f"| {name} | {prior} | {split} | {100 * m['top1']:.1f}% "
                    f"| {100 * m['balanced_accuracy']:.1f}% "
                    f"| {100 * m['galaxy10_weighted_accuracy']:.1f}% | {m['ece']:.3f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_arguments(parser)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--name", action="append", default=[], help="a short name per model, in order")
    parser.add_argument("--out", type=Path, help="write the full results here as JSON")
    parser.add_argument(
        "--prior-samples", type=int, default=0, help="also score each served prior post hoc (v2 labels)"
    )
    args = parser.parse_args()
    config = load_config(args.config)
    results = compare(args.models, config, args.data_root, args.prior_samples)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    names = args.name or [p.as_posix() for p in args.models]
    print(
        f"Vote galaxies scored where Galaxy10 covers >= {MIN_COVERAGE} of the votes (all of them under v1)."
    )
    print(table(results, names))
    if args.prior_samples:
        print(prior_table(results, names))


if __name__ == "__main__":
    main()
