"""MODEL_CARD.md, written from the manifest so the numbers cannot drift from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from classifier.core.galaxy10 import CLASS_NAMES
from ml.decals_validation import FRACTION_MIN_VOTES
from ml.evaluate import DEV_SET


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _row(name: str, metrics: dict[str, Any]) -> str:
    return (
        f"| {name} | {metrics.get('n', metrics.get('images', ''))} | {_pct(metrics.get('top1'))} "
        f"{_interval(metrics)}| {_pct(metrics.get('top2'))} | {_pct(metrics.get('group4'))} "
        f"| {_pct(metrics.get('balanced_accuracy'))} | {_pct(metrics.get('galaxy10_weighted_accuracy'))} "
        f"| {_pct(metrics.get('coarse_accuracy'))} "
        f"| {metrics['macro_f1']:.3f} | {metrics['ece']:.3f} |"
        if "macro_f1" in metrics
        else f"| {name} | {metrics.get('images', '')} | | | | | "
        f"| {_pct(metrics.get('coarse_accuracy'))} | | |"
        + (
            f" group-probability error {metrics['group_abs_error']:.3f}"
            if "group_abs_error" in metrics and "coarse_accuracy" not in metrics
            else ""
        )
    )


def _interval(metrics: dict[str, Any]) -> str:
    low, high = metrics.get("top1_interval95") or (None, None)
    return "" if low is None else f"({100 * low:.0f}-{100 * high:.0f}%) "


def _calibration_sentence(dev: dict[str, Any]) -> str:
    table = dev["reliability"]
    counts = table["counts"]
    total = max(1, sum(counts))
    confidence = sum(c * n for c, n in zip(table["confidence"], counts, strict=True)) / total
    accuracy = sum(a * n for a, n in zip(table["accuracy"], counts, strict=True)) / total
    if abs(confidence - accuracy) < 0.05:
        verdict = "so on average the confidence means what it says"
    elif confidence < accuracy:
        verdict = "so there the model is under-confident"
    else:
        verdict = "so there the model is over-confident"
    return (
        f"Calibration on the DECaLS dev images: mean confidence {_pct(confidence)} against an accuracy "
        f"of {_pct(accuracy)}, {verdict}. The temperature is fitted on validation galaxies with a clear "
        "vote majority (see ml.calibration.calibrate); 30 images give a coarse reliability diagram."
    )


def _quantisation_choice(manifest: dict[str, Any], check: dict[str, Any]) -> list[str]:
    losses = check.get("int8_losses_beyond_tolerance")
    if losses is None:
        return []
    if not losses:
        return [f"Shipped as {manifest['quantization']}: {check['selection_rule']}, and it did not."]
    lost = ", ".join(f"{name} by {100 * points:.1f} points" for name, points in losses.items())
    return [
        f"Shipped as {manifest['quantization']}: {check['selection_rule']}; int8 lost {lost}.",
    ]


def _prior_sentence(manifest: dict[str, Any]) -> str:
    prior = manifest["training"].get("prior") or {}
    served = prior.get("served", "training")
    described = {
        "training": (
            "the training mix's own class prior, which pooled validation preferred to a uniform "
            "prior and to Galaxy10 DECaLS's class frequencies (docs/ablations.md)"
        ),
        "balanced": "a uniform class prior (a logit adjustment folded into the head's bias)",
        "galaxy10": (
            "Galaxy10 DECaLS's class frequencies as the prior (a logit adjustment folded into the "
            "head's bias)"
        ),
    }[served]
    epoch = manifest["training"].get("selected_epoch")
    chosen = f" Epoch {epoch} was selected on pooled validation top-1." if epoch else ""
    return f"The served probabilities use {described}; `[prior]` in ml/config.toml.{chosen}"


def _cell(report: dict[str, Any]) -> str:
    low, high = report["top1_interval95"]
    return (
        f"{report['n']} | {100 * report['top1']:.1f}% ({100 * low:.0f}-{100 * high:.0f}) "
        f"| {100 * report['top2']:.1f}% | {100 * report['group4']:.1f}% "
        f"| {100 * report['balanced_accuracy']:.1f}% | {report['ece']:.3f}"
    )


def peer_table(results: dict[str, Any]) -> str:
    """Markdown: one row per model and image set, then the latency."""
    lines = [
        "| images | model | n | top-1 (95% interval) | top-2 | 4-group | class-balanced | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rule = results.get("label_rule", "v2")
    rows = [
        (DEV_SET, "Galaxy10 DECaLS dev (30)"),
        ("test/pooled", f"SDSS GZ2 test splits, pooled ({rule} vote labels)"),
    ]
    for key, label in rows:
        for name, metrics in results["metrics"].items():
            if key in metrics:
                lines.append(f"| {label} | {name} | {_cell(metrics[key])} |")
    for name, metrics in results["metrics"].items():
        coarse = metrics.get("test/gz1", {}).get("coarse_accuracy")
        if coarse is not None:
            lines.append(
                f"| SDSS GZ1 test split, coarse group agreement | {name} | | {100 * coarse:.1f}% | | | | |"
            )
    latency = results["latency_ms"]
    lines.append("")
    lines.append(
        "Median latency of one image, same TFLite runtime, 1 thread: "
        + ", ".join(f"{name} {value:.1f} ms" for name, value in latency.items())
        + f" (galamo / ours = {latency['galamo'] / latency['ours']:.1f}x)."
    )
    return "\n".join(lines)


def _peer_section(peer: dict[str, Any] | None, teacher_weight: float) -> list[str]:
    """The comparison with galamo's CNN (ml/experiments/peer.py), when it has been run for this file."""
    if not peer:
        return []
    taught = (
        f"This model learnt from it as a group-level teacher (weight {teacher_weight},"
        " ml/experiments/teacher.py)."
        if teacher_weight
        else "This model does not learn from it: as a group-level teacher on the GZ DECaLS training"
        " images it made the model worse (docs/ablations.md)."
    )

    return [
        "## Compared with the pip-installable peer",
        "",
        "galamo 0.0.8 (PyPI, BSD-3-Clause; see NOTICE) ships a CNN trained on the real Galaxy10",
        "DECaLS labels. `python -m ml.experiments.peer` runs it and this model on the same images,",
        "each with its own preprocessing, in the same TFLite runtime. galamo's numbers on the DECaLS",
        "dev images may be optimistic: its training split is unknown, and these 30 images come from",
        "Galaxy10 DECaLS itself, so some may have been in its training set. It was never trained on",
        "SDSS images.",
        taught,
        "",
        peer_table(peer),
        "",
    ]


def write_model_card(
    manifest: dict[str, Any], path: Path, static_dir: Path, peer: dict[str, Any] | None = None
) -> None:
    """Write the card to ``path``; ``static_dir`` is where the manifest's figure paths start;
    ``peer`` is ml/experiments/peer.py's result for this file, if it was run."""
    figures = {
        key: os.path.relpath(static_dir / name, path.parent) for key, name in manifest["figures"].items()
    }
    metrics = manifest["metrics"]
    training = manifest["training"]["config"]
    dev = metrics.get("galaxy10_decals_dev", {})
    top1 = dev.get("top1", 0.5)
    standard_error = (top1 * (1 - top1) / max(dev.get("n", 1), 1)) ** 0.5
    lines = [
        "# Model card: Galaxy10 DECaLS morphology classifier",
        "",
        f"- Version: `{manifest['model_version']}`",
        f"- File: `{manifest['model_file']}` ({manifest['quantization']} TFLite)",
        f"- sha256: `{manifest['sha256']}`",
        f"- Architecture: {manifest['architecture']}, input {manifest['preprocessing']['size']} px",
        (
            f"- Output: calibrated probabilities over the 10 Galaxy10 DECaLS classes "
            f"(temperature {manifest['output']['calibration_temperature']})"
        ),
        "- Rebuild: `make model` (runs `python -m ml.pipeline`), configuration in `ml/config.toml`",
        "",
        "## Intended use",
        "",
        "Sorting colour cutouts of single galaxies, framed like Galaxy10 DECaLS (256 px g/r/z",
        "images at 0.262 arcsec/pixel, galaxy centred), into the ten Galaxy10 DECaLS classes, as a",
        "first pass that people review. It is not a substitute for Galaxy Zoo vote fractions in",
        "science analyses, and its probabilities are not population fractions.",
        "",
        "## Training data",
        "",
        "The full Galaxy10 DECaLS file could not be used where this model was trained. It learnt from:",
        "",
        "| source | images | crop | use |",
        "|---|---|---|---|",
    ]
    uses = {
        "gz2_hart": "soft 10-class targets from GZ2 votes (Hart et al. 2016 debiased fractions)",
        "gz2_kaggle": "soft 10-class targets from GZ2 votes (Kaggle cumulative form)",
        "gz1": "coarse group labels (elliptical, spiral, edge-on, merger): -log of the group's probability",
        "gz_decals_partial": (
            "DECaLS images with smooth/disk, edge-on and spiral fractions as group targets"
            if training["train"].get("decals_partial", "labels") == "labels"
            else "unlabelled DECaLS images: two augmented views must agree (domain adaptation)"
        ),
        "galaxy10_h5": "Galaxy10 DECaLS hard labels (duplicates removed)",
    }
    for source in manifest["provenance"]["sources"]:
        lines.append(
            f"| {source['name']} | {source['images']} | {source['crop_fraction']} "
            f"| {uses.get(source['name'], 'user-provided hard labels')} |"
        )
    lines += [
        "",
        (
            f"Each source is split {training['split']['fractions']} (train/validation/test), stratified, "
            f"seed {training['seed']}. The validation split fits the calibration temperature; the test "
            "split is only used below. Checksums of every image set are in the manifest."
        ),
        "",
        "## Domain shift: SDSS to DECaLS",
        "",
        "Almost all training images are SDSS: shallower, on a black sky, blurrier and redder than",
        "the DECaLS images this model serves. Augmentation imitates DECaLS (grey sky level, noise,",
        "injected faint neighbour sources, colour and saturation changes, resolution changes), and",
        "the 470 Galaxy Zoo DECaLS images add target-survey examples, but the gap remains. Held-out",
        "SDSS accuracy overstates DECaLS accuracy; judge the model on the DECaLS row below. That row",
        (
            f"has only {dev.get('n', 0)} images (3 per class), so one standard error is about "
            f"{_pct(standard_error)}."
        ),
        "",
        "## Metrics of the shipped TFLite file",
        "",
        "Measured on the .tflite file through the serving preprocessing. Vote-labelled sets are",
        "scored against the class with the largest vote-derived probability, where Galaxy10 classes",
        "cover at least half the votes; `pooled` joins a split's vote-labelled sets. Class-balanced",
        "is the mean recall over classes; Galaxy10-weighted weights each class's recall by its share",
        "of Galaxy10 DECaLS (the accuracy expected on Galaxy10's class mix). The epoch and the",
        "export were chosen on the validation (`val/`) rows only; the DECaLS dev images were scored",
        "once, for the shipped file.",
        "",
        _prior_sentence(manifest),
        "",
        (
            "| evaluation set | n | top-1 (95% Wilson interval) | top-2 | 4-group | class-balanced "
            "| Galaxy10-weighted | coarse | macro-F1 | ECE |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, values in metrics.items():
        if isinstance(values, dict) and name != "export_check" and not _only_vote_fractions(values):
            lines.append(_row(name, values))
    lines += _validation_disagreement(metrics, training["train"].get("select_on"))
    if dev:
        lines += [
            "",
            "Per-class recall on the DECaLS dev images:",
            "",
            "| class | recall |",
            "|---|---|",
            *[f"| {n} | {_pct(r)} |" for n, r in zip(CLASS_NAMES, dev["per_class_recall"], strict=True)],
            "",
            _calibration_sentence(dev),
            "",
            f"![confusion matrix]({figures['confusion_matrix']})",
            f"![reliability diagram]({figures['reliability']})",
        ]
    lines += _vote_fraction_section(manifest)
    check = metrics.get("export_check", {})
    lines += [
        "",
        "## Export check",
        "",
        (
            f"Largest absolute difference between the TFLite probabilities and PyTorch's on the DECaLS "
            f"dev images: {check.get('max_abs_diff_vs_torch_on_dev_images', float('nan')):.4f}."
        ),
        "",
        "| candidate | bytes | max diff vs PyTorch | pooled validation top-1 |",
        "|---|---|---|---|",
        *[
            f"| {q} | {c['bytes']} | {c['max_abs_diff_vs_torch']:.4f} | {_pct(c.get('val_pooled_top1'))} |"
            for q, c in check.get("candidates", {}).items()
        ],
        *[
            f"Vote fractions of the {q} candidate: largest difference from PyTorch's "
            f"{c['max_abs_vote_diff_vs_torch']:.4f}."
            for q, c in check.get("candidates", {}).items()
            if c.get("max_abs_vote_diff_vs_torch") is not None
        ],
        "",
        *_quantisation_choice(manifest, check),
        "",
        *_peer_section(peer, training["train"].get("teacher_weight", 0.0)),
        "## Limits",
        "",
        "- Trained mostly on SDSS; expect lower accuracy on DECaLS than on the held-out SDSS rows.",
        "- Fine distinctions (tight vs loose spirals, in-between vs round smooth, bulge or not in",
        "  edge-on disks) rest on crowd votes mapped onto Galaxy10 classes, not on Galaxy10 labels.",
        "- Disturbed and merging galaxies are rare in the training votes; their recall is low.",
        *_framing_limit(manifest),
        "",
    ]
    path.write_text("\n".join(lines))


def _framing_limit(manifest: dict[str, Any]) -> list[str]:
    gate = manifest.get("ood")
    if not gate:
        return [
            "- Images framed differently from Galaxy10 (much wider fields, other pixel scales, single",
            "  bands, non-galaxies) get confident but meaningless answers: there is no",
            "  out-of-distribution detector.",
        ]
    report = gate.get("metrics", {})
    return [
        "- Images framed differently from Galaxy10 (much wider fields, other pixel scales,",
        "  non-galaxies) get confident but meaningless classes. The out-of-distribution gate",
        "  (docs/ood.md) marks pictures that do not look like a galaxy cutout:",
        (
            f"  {_pct(report.get('test_galaxies_flagged'))} of the test-split galaxies and "
            f"{_pct(report.get('negatives_flagged'))} of generated non-galaxy"
        ),
        f"  pictures were flagged (AUROC {report.get('auroc', float('nan')):.3f}). It judges the light's",
        "  geometry only, so a centred bright object on a dark background passes it.",
    ]


def _validation_disagreement(metrics: dict[str, Any], selected_on: str | None) -> list[str]:
    """How far pooled SDSS validation is from the GZ DECaLS validation folds, for this file."""
    sdss, decals = metrics.get("val/pooled", {}), metrics.get("val/gz_decals_votes", {})
    if "top1" not in sdss or "top1" not in decals:
        return []
    gap = 100 * (sdss["top1"] - decals["top1"])
    rule = {"decals": "the GZ DECaLS folds", "sdss_pooled": "pooled SDSS validation"}.get(
        selected_on or "", ""
    )
    return [
        "",
        (
            f"**SDSS and DECaLS validation disagree.** Pooled SDSS validation gives this file "
            f"{_pct(sdss['top1'])} top-1 (n={sdss.get('n')}); agreement with the vote-implied class on "
            f"the GZ DECaLS validation folds is {_pct(decals['top1'])} (n={decals.get('n')}), "
            f"{abs(gap):.1f} points {'lower' if gap > 0 else 'higher'}. DECaLS is the survey users upload, "
            "so models are compared there (`python -m ml.decals_validation`)"
            + (f"; this file's epoch was chosen on {rule}." if rule else ".")
        ),
    ]


def _only_vote_fractions(values: dict[str, Any]) -> bool:
    """A metrics entry with the vote-fraction errors alone, no classification set."""
    return "vote_fraction_mae" in values and "n" not in values and "images" not in values


def _vote_fraction_section(manifest: dict[str, Any]) -> list[str]:
    """The vote-fraction errors of every metrics entry that carries them (ml/decals_validation.py)."""
    lines: list[str] = []
    for name, values in manifest["metrics"].items():
        errors = values.get("vote_fraction_mae") if isinstance(values, dict) else None
        if not errors:
            continue
        lines += [
            "",
            f"## Galaxy Zoo vote fractions ({name})",
            "",
            "Each prediction carries the expected share of Galaxy Zoo DECaLS volunteers choosing each",
            "answer of the main questions. Mean absolute error of those fractions against the",
            "volunteers' on the held-out DECaLS validation folds, for each question over the galaxies",
            f"where at least {FRACTION_MIN_VOTES} volunteers answered it.",
            "",
        ]
        smooth = errors.get("smooth-or-featured")
        if smooth:
            lines += [
                (
                    f"Smooth or featured: mean absolute error {smooth['mae']:.3f} over {smooth['n']} "
                    f"galaxies (the smooth fraction's {smooth['answers']['smooth']:.3f})."
                ),
                "",
            ]
        lines += ["| question | galaxies | MAE | MAE per answer |", "|---|---|---|---|"]
        for question, error in errors.items():
            answers = ", ".join(f"{answer} {mae:.3f}" for answer, mae in error["answers"].items())
            lines.append(f"| {question} | {error['n']} | {error['mae']:.3f} | {answers} |")
    return lines
