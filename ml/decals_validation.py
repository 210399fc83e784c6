"""Model choice on the target survey: a Galaxy Zoo DECaLS validation set.

    python -m ml.decals_validation --data-root ../shared/data --model ml/models
    python -m ml.decals_validation --model ml/models --model ml/runs/votes --all-folds

SDSS validation does not predict accuracy on DECaLS (docs/ablations.md), so models are chosen here:

* **folds**: the well-voted galaxies of ``gz_decals_votes`` in seeded, stratified folds
  (ml/decals_folds.py); the folds listed in ``validation_folds`` are the validation set, which
  training never sees. Two folds rather than one, because a single fold's 95% interval is too
  wide to choose an epoch on; not all of them, because the training source would be left with
  only few-vote galaxies.
* **members**: the 69 exact Galaxy10 DECaLS members with an image on disk
  (``galaxy10_decals_coords/members_on_disk.csv``), a separate small set, also never trained on.

Scores for one model (its 10 Galaxy10 probabilities, through the serving preprocessing):
(a) agreement of its top class with the class the votes imply (``ml.votes.vote_targets``,
argmax, where Galaxy10 covers at least ``MIN_COVERAGE`` of the votes), top-1 and 4-group;
(b) the mean absolute error of its smooth fraction (the summed probability of the three smooth
classes) against the volunteers' smooth fraction; (c) accuracy on the exact members; (d) for a
model with vote fractions (a run's vote head, or a TFLite file's vote output), the mean absolute
error of every answer's fraction (``ml.votes.fraction_errors``), and (a) and (c) again for the
Galaxy10 probabilities its vote fractions imply through the decision tree (``ml.tree_classes``:
rows "tree") and for the mean of those and the head's (rows "blend"), with the paired difference
from the head on the same galaxies.
The 30 dev images never enter it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.core.galaxy10 import GROUP_OF_CLASS, NUM_CLASSES
from classifier.core.statistics import Z_95, wilson_interval
from ml import sources as src
from ml import votes
from ml.cache import source_inputs
from ml.config import DEFAULT_CONFIG, Config, load_config, parse_override
from ml.dataset import collect_sources, serving_preprocess_config
from ml.decals_folds import VOTES_DIR, DecalsValidation, load
from ml.decals_models import LoadedModel, load_model
from ml.evaluate import evaluation_sets, joins_pool, pooled_report
from ml.labels import SMOOTH
from ml.metrics import GROUP_MATRIX, MIN_COVERAGE, confusion_matrix
from ml.renderings import to_galaxy10_inputs
from ml.tree_classes import coverage_summary, derived_probabilities
from ml.vote_loss import expected_fractions, vote_nll

# Below this many answers to a question, the volunteers' own fraction is too noisy to score.
FRACTION_MIN_VOTES = 20
MEMBERS_CSV = Path("galaxy10_decals_coords") / "members_on_disk.csv"
# How the GZ DECaLS cutouts are shown to a model: as they are, or as Galaxy10 renders them.
RENDERINGS = ("gz_decals", "galaxy10")


def vote_rule_agreement(validation: DecalsValidation) -> dict[str, Any]:
    """How often the vote-implied class is the exact Galaxy10 class of the members in the table."""
    member = validation.member
    implied = validation.soft[member].argmax(axis=1)
    truth = validation.table.galaxy10_label[member]
    agree = int((implied == truth).sum())
    group = np.asarray(GROUP_OF_CLASS)
    return {
        "n": int(member.sum()),
        "agree": agree,
        "top1": agree / max(1, int(member.sum())),
        "group4": float((group[implied] == group[truth]).mean()) if member.any() else 0.0,
        "disagreements": [
            {"iauname": validation.table.iaunames[i], "exact": int(t), "implied": int(p)}
            for i, t, p in zip(np.flatnonzero(member), truth, implied, strict=True)
            if t != p
        ],
    }


def _rate(hits: np.ndarray) -> dict[str, Any]:
    n, k = len(hits), int(np.sum(hits))
    return {"n": n, "value": k / n if n else None, "interval95": list(wilson_interval(k, n))}


def mean_interval(values: np.ndarray) -> dict[str, Any]:
    """Mean with a normal 95% interval (fine for the few hundred absolute errors here)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "value": None, "interval95": [None, None]}
    mean = float(values.mean())
    half = Z_95 * float(values.std(ddof=1)) / np.sqrt(n) if n > 1 else float("nan")
    return {"n": n, "value": mean, "interval95": [mean - half, mean + half]}


def smooth_error(predicted: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """Mean |predicted smooth fraction - volunteers' smooth fraction| over galaxies with
    smooth-or-featured votes."""
    volunteers = votes.smooth_fraction(counts)
    known = ~np.isnan(volunteers)
    return mean_interval(np.abs(predicted[known] - volunteers[known]))


def smooth_mae(probs: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """The smooth-fraction error of 10-class probabilities: the three smooth classes summed."""
    return smooth_error(probs[:, list(SMOOTH)].sum(axis=1), counts)


def fold_scores(probs: np.ndarray, soft: np.ndarray, coverage: np.ndarray, counts: np.ndarray) -> dict:
    """Agreement with the vote-implied class (covered galaxies) and the smooth-fraction error."""
    covered = coverage >= MIN_COVERAGE
    implied = soft[covered].argmax(axis=1)
    predicted = probs[covered].argmax(axis=1)
    group_hit = (probs[covered] @ GROUP_MATRIX).argmax(axis=1) == np.asarray(GROUP_OF_CLASS)[implied]
    return {
        "galaxies": len(probs),
        "top1": _rate(predicted == implied),
        "group4": _rate(group_hit),
        "smooth_mae": smooth_mae(probs, counts),
        "correct": (predicted == implied).tolist(),
        "confusion_matrix": confusion_matrix(implied, predicted).tolist(),  # rows: vote-implied
    }


def member_scores(probs: np.ndarray, label: np.ndarray) -> dict[str, Any]:
    group = np.asarray(GROUP_OF_CLASS)
    return {
        "top1": _rate(probs.argmax(axis=1) == label),
        "group4": _rate((probs @ GROUP_MATRIX).argmax(axis=1) == group[label]),
    }


def paired_difference(
    correct_a: np.ndarray, correct_b: np.ndarray, samples: int = 10000, seed: int = 0
) -> dict[str, float]:
    """Accuracy of b minus a on the same galaxies, with a paired bootstrap 95% interval."""
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), size=(samples, len(a)))
    differences = (b[draws] - a[draws]).mean(axis=1)
    return {
        "difference": float(b.mean() - a.mean()),
        "interval95": [float(np.quantile(differences, 0.025)), float(np.quantile(differences, 0.975))],
    }


# ---- models and their inputs ----------------------------------------------------------------


def _inputs(
    name: str, images: list[str], soft: np.ndarray, config: Config, rendering: str = "gz_decals"
) -> np.ndarray:
    """Model inputs of GZ DECaLS cutouts through the serving preprocessing, at the GZ DECaLS crop,
    in the ``rendering`` asked (ml.renderings.to_galaxy10_rendering for "galaxy10")."""
    source = src.soft_source(name, images, list(images), soft, config.crops.decals_votes)
    pre = serving_preprocess_config(config)
    inputs = source_inputs(source, pre)
    return to_galaxy10_inputs(inputs, pre.mean, pre.std) if rendering == "galaxy10" else inputs


def model_inputs(
    data_root: Path,
    validation: DecalsValidation,
    rows: np.ndarray,
    config: Config,
    rendering: str = "gz_decals",
) -> np.ndarray:
    images = [str(data_root / VOTES_DIR / validation.table.files[i]) for i in rows]
    return _inputs("gz_decals_votes", images, validation.soft[rows], config, rendering)


def read_members(data_root: Path) -> tuple[list[str], np.ndarray]:
    rows = src._read_csv(data_root / MEMBERS_CSV)
    return [str(data_root / r["file"]) for r in rows], np.array([int(r["label_index"]) for r in rows])


def member_inputs(
    data_root: Path, config: Config, rendering: str = "gz_decals"
) -> tuple[np.ndarray, np.ndarray]:
    images, label = read_members(data_root)
    return _inputs("galaxy10_members", images, np.eye(NUM_CLASSES)[label], config, rendering), label


def vote_head_scores(outputs: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """The vote head on held-out galaxies: mean vote negative log-likelihood per galaxy, and the
    error of its predicted smooth fraction (Dirichlet mean, artifact dropped) against the volunteers'."""
    raw = torch.from_numpy(outputs)
    nll = vote_nll(raw, torch.from_numpy(counts.astype(np.float32))).numpy()
    fractions = expected_fractions(raw).numpy()[:, votes.ANSWER_SLICES["smooth-or-featured"]]
    predicted = fractions[:, 0] / fractions[:, :2].sum(axis=1)
    return {"vote_nll": mean_interval(nll), "smooth_mae": smooth_error(predicted, counts)}


def sdss_pooled(model: LoadedModel, data_root: Path) -> dict[str, Any]:
    """Pooled SDSS validation through the serving preprocessing (for runs, which carry none)."""
    sets = evaluation_sets(
        model.config, data_root, collect_sources(model.config, data_root), ("val",), with_dev=False
    )
    return pooled_report([(model.predict(s.inputs), s.source) for s in sets if joins_pool(s.source)])


def score_model(
    model: LoadedModel,
    data_root: Path,
    validation: DecalsValidation,
    *,
    all_folds: bool = False,
    rendering: str = "gz_decals",
    read_spiral: bool = True,
) -> dict[str, Any]:
    """The DECaLS validation scores of one model (validation folds; with ``all_folds`` every fold
    too), its GZ DECaLS images (folds and members) shown in ``rendering``. A model with vote
    fractions is scored a second and third time, as ``results["tree"]`` and ``results["blend"]``
    (same layout, plus the paired top-1 difference from the head), through the decision tree with
    ``read_spiral`` (the rule of the folds' vote-implied classes)."""
    results: dict[str, Any] = {"model": model.name, "rendering": rendering}
    derived: dict[str, dict[str, Any]] = {"tree": {}, "blend": {}}
    parts = {"validation folds": validation.validation}
    if all_folds:
        parts["all folds"] = validation.fold >= 0
    for name, mask in parts.items():
        rows = np.flatnonzero(mask)
        inputs = model_inputs(data_root, validation, rows, model.config, rendering)
        counts = validation.table.counts[rows]
        scored = (validation.soft[rows], validation.coverage[rows], counts)
        probs = model.predict(inputs)
        results[name] = fold_scores(probs, *scored)
        if model.predict_votes is not None:
            results[name]["vote_head"] = vote_head_scores(model.predict_votes(inputs), counts)
        if model.predict_fractions is not None:
            fractions = model.predict_fractions(inputs)
            results[name]["vote_fraction_mae"] = votes.fraction_errors(fractions, counts, FRACTION_MIN_VOTES)
            variants, coverage = derived_probabilities(probs, fractions, read_spiral=read_spiral)
            for kind, variant in variants.items():
                derived[kind][name] = fold_scores(variant, *scored)
                derived[kind][name]["top1_minus_head"] = paired_difference(
                    results[name]["correct"], derived[kind][name]["correct"]
                )
            derived["tree"][name]["tree_coverage"] = coverage_summary(coverage)
    inputs, label = member_inputs(data_root, model.config, rendering)
    probs = model.predict(inputs)
    results["members"] = member_scores(probs, label)
    if model.predict_fractions is not None:
        variants, _ = derived_probabilities(probs, model.predict_fractions(inputs), read_spiral=read_spiral)
        for kind, variant in variants.items():
            derived[kind]["members"] = member_scores(variant, label)
            derived[kind]["members"]["top1_minus_head"] = paired_difference(
                probs.argmax(axis=1) == label, variant.argmax(axis=1) == label
            )
            results[kind] = {"model": f"{model.name} [{kind}]", "rendering": rendering, **derived[kind]}
    return results


def _pct(rate: dict[str, Any]) -> str:
    if rate.get("value") is None:
        return "n/a"
    low, high = rate["interval95"]
    return f"{100 * rate['value']:.1f}% ({100 * low:.0f}-{100 * high:.0f}), n={rate['n']}"


def _mae(stat: dict[str, Any]) -> str:
    low, high = stat["interval95"]
    return f"{stat['value']:.3f} ({low:.3f}-{high:.3f}), n={stat['n']}"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        (
            "| model | set | top-1 vs vote-implied | 4-group | smooth-fraction MAE | exact members top-1 "
            "| members 4-group | SDSS val/pooled top-1 |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    # A model's tree and blend rows follow its own; they have no SDSS score of their own.
    rows = [r for result in results for r in (result, result.get("tree"), result.get("blend")) if r]
    for result in rows:
        pooled = result.get("sdss_pooled") or {}
        sdss = (
            f"{100 * pooled['top1']:.1f}% ({100 * pooled['top1_interval95'][0]:.0f}-"
            f"{100 * pooled['top1_interval95'][1]:.0f}), n={pooled['n']}"
            if pooled
            else "n/a"
        )
        for part in ("validation folds", "all folds"):
            if part not in result:
                continue
            scores = result[part]
            shown = (
                part if result.get("rendering", "gz_decals") == "gz_decals" else f"{part}, Galaxy10 rendering"
            )
            lines.append(
                f"| {result['model']} | {shown} | {_pct(scores['top1'])} | {_pct(scores['group4'])} | "
                f"{_mae(scores['smooth_mae'])} | {_pct(result['members']['top1'])} | "
                f"{_pct(result['members']['group4'])} | {sdss} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="defines the folds")
    parser.add_argument(
        "--model", type=Path, action="append", default=[], help="repeatable; default ml/models"
    )
    parser.add_argument(
        "--all-folds", action="store_true", help="also score every fold (trained-on folds for runs)"
    )
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument(
        "--rendering",
        choices=RENDERINGS,
        default="gz_decals",
        help="the GZ DECaLS images as they are, or re-rendered as Galaxy10 renders them",
    )
    parser.add_argument(
        "--crop",
        type=float,
        help="centre crop of the GZ DECaLS images (default: the config's; 0.7 as served)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="for a run still training (best.pt, no run.json): the overrides it was started with",
    )
    args = parser.parse_args()
    run_config = load_config(args.config, dict(parse_override(text) for text in args.overrides))
    models = [load_model(p, run_config) for p in (args.model or [Path("ml/models")])]
    for model in models:
        if args.crop:
            model.config = model.config.with_overrides({"crops.gz_decals_votes": args.crop})
    # The folds come from the one configuration (--config), the same for every model scored,
    # so all models are compared on the same galaxies.
    config = load_config(args.config)
    validation = load(args.data_root, config)
    rule = vote_rule_agreement(validation)
    print(
        f"vote rule vs exact Galaxy10 class: {rule['agree']}/{rule['n']} top-1 "
        f"({100 * rule['top1']:.1f}%), 4-group {100 * rule['group4']:.1f}%"
    )
    sizes = np.bincount(validation.fold[validation.fold >= 0]).tolist()
    held = int(validation.validation.sum())
    print(f"folds (>= {config.decals_validation.min_votes} votes): sizes {sizes}; validation {held} galaxies")
    results = []
    for model in models:
        result = score_model(
            model,
            args.data_root,
            validation,
            all_folds=args.all_folds,
            rendering=args.rendering,
            read_spiral=config.labels.read_spiral,
        )
        result["sdss_pooled"] = model.sdss_pooled or sdss_pooled(model, args.data_root)
        results.append(result)
    base = results[0]["validation folds"]["correct"]
    for result in results[1:]:
        result["top1_difference_vs_first"] = paired_difference(base, result["validation folds"]["correct"])
        print(
            f"{result['model']} minus {results[0]['model']}: {json.dumps(result['top1_difference_vs_first'])}"
        )
    print(f"rendering of the GZ DECaLS images: {args.rendering}")
    print(table(results))
    for result in results:
        head = result["validation folds"].get("vote_head")
        if head:
            print(
                f"{result['model']} vote head on the validation folds: vote NLL {_mae(head['vote_nll'])}, "
                f"smooth-fraction MAE {_mae(head['smooth_mae'])}"
            )
        for kind in ("tree", "blend"):
            for part, scores in result.get(kind, {}).items():
                if isinstance(scores, dict) and "top1_minus_head" in scores:
                    difference = json.dumps(scores["top1_minus_head"])
                    print(f"{result['model']} {kind} minus head, {part} top-1: {difference}")
        coverage = result.get("tree", {}).get("validation folds", {}).get("tree_coverage")
        if coverage:
            print(f"{result['model']} tree coverage on the validation folds: {json.dumps(coverage)}")
        for question, error in (result["validation folds"].get("vote_fraction_mae") or {}).items():
            print(f"{result['model']} {question} vote-fraction MAE {error['mae']:.3f}, n={error['n']}")
    if args.json:
        output = {"vote_rule": rule, "rendering": args.rendering, "results": results}
        args.json.write_text(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
