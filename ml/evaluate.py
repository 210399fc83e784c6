"""Evaluate a .tflite file itself (not the float model) on held-out and DECaLS images.

    python -m ml.evaluate ml/models/galaxy10.tflite --run ml/runs/shipped

Every image goes through classifier.core.preprocessing, the serving code path, with
its source's crop. Soft-target (vote) sources are scored against the argmax of
their vote-derived target, where Galaxy10 classes cover at least half the votes
(``MIN_COVERAGE``); the vote-labelled sets of one split are also pooled.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifier.core.galaxy10 import NUM_CLASSES
from classifier.core.galaxy_zoo import NUM_ANSWERS
from ml import sources as src
from ml.cache import source_inputs
from ml.config import Config
from ml.dataset import collect_sources, serving_preprocess_config
from ml.metrics import MIN_COVERAGE, classification_report, group_vote_metrics, reliability

DEV_SET = "galaxy10_decals_dev"


class TFLiteModel:
    """A plain interpreter for evaluation (ai-edge-litert, else tflite-runtime).

    Calling it gives the 10 probabilities; ``votes`` the vote fractions of a model exported
    with a vote head (``has_votes``). The two outputs are told apart by their width, since the
    file does not keep the graph's order; a model of another project has its first output read.
    """

    def __init__(self, path: Path, num_threads: int = 2) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from tflite_runtime.interpreter import Interpreter
        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        details = self.interpreter.get_output_details()
        by_width = {int(d["shape"][-1]): d["index"] for d in details}
        self.output = by_width.get(NUM_CLASSES, details[0]["index"])
        self.vote_output = by_width.get(NUM_ANSWERS) if len(details) == 2 else None

    @property
    def has_votes(self) -> bool:
        return self.vote_output is not None

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The probabilities (N, 10) and the vote fractions (N, NUM_ANSWERS), None without them."""
        probs, fractions = [], []
        for image in images:
            self.interpreter.set_tensor(self.input, image[None].astype(np.float32))
            self.interpreter.invoke()
            probs.append(self.interpreter.get_tensor(self.output)[0])
            if self.vote_output is not None:
                fractions.append(self.interpreter.get_tensor(self.vote_output)[0])
        return np.array(probs), np.array(fractions) if self.vote_output is not None else None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.predict(images)[0]

    def votes(self, images: np.ndarray) -> np.ndarray:
        fractions = self.predict(images)[1]
        if fractions is None:
            raise ValueError("the model has no vote-fraction output")
        return fractions


def source_report(probs: np.ndarray, source: src.SourceSet) -> dict[str, Any]:
    report: dict[str, Any] = {"images": len(source)}
    soft = source.soft_weight >= MIN_COVERAGE
    if soft.any():
        target = source.soft[soft]
        report.update(classification_report(probs[soft], target.argmax(axis=1)))
        report["soft_cross_entropy"] = float(-(target * np.log(probs[soft] + 1e-9)).sum(1).mean())
    report.update(group_vote_metrics(probs, source.group_masks, source.group_targets, source.group_weights))
    return report


@dataclass(frozen=True)
class EvaluationSet:
    """A labelled set and its model inputs, decoded once for every model evaluated on it."""

    name: str
    source: src.SourceSet
    inputs: np.ndarray


def dev_set(data_root: Path, config: Config) -> EvaluationSet | None:
    """The 30 Galaxy10 DECaLS dev images, when present: a final report, never a selection."""
    pre = serving_preprocess_config(config)
    dev_root = data_root / "galaxy10_decals_dev"
    if not dev_root.is_dir():
        return None
    dev = src.load_galaxy10_dev(dev_root, pre.crop_fraction)
    return EvaluationSet(DEV_SET, dev, source_inputs(dev, pre))


def evaluation_sets(
    config: Config,
    data_root: Path,
    sources: list[src.SourceSet],
    splits: tuple[str, ...] = ("test",),
    *,
    with_dev: bool = True,
) -> list[EvaluationSet]:
    """The Galaxy10 DECaLS dev images (when present and ``with_dev``) and the given splits
    ("val", "test") of every training source, exactly as training split them, each through
    the serving preprocessing."""
    pre = serving_preprocess_config(config)
    sets = []
    dev = dev_set(data_root, config) if with_dev else None
    if dev is not None:
        sets.append(dev)
    for source in sources:
        parts = src.split_indices(source, config)
        for split in splits:
            held_out = source.subset(parts[split])
            sets.append(EvaluationSet(f"{split}/{held_out.name}", held_out, source_inputs(held_out, pre)))
    return sets


def joins_pool(source: src.SourceSet) -> bool:
    """Whether a held-out set joins its split's pooled report: vote-labelled, and not the GZ DECaLS
    votes, which are scored on their own (ml/decals_validation.py), never pooled with SDSS."""
    return bool((source.soft_weight > 0).any()) and source.name not in src.NOT_POOLED


def pooled_report(parts: list[tuple[np.ndarray, src.SourceSet]]) -> dict[str, Any]:
    """One classification report over the covered vote-labelled galaxies of several sets."""
    probs, labels = [], []
    for set_probs, source in parts:
        covered = source.soft_weight >= MIN_COVERAGE
        probs.append(set_probs[covered])
        labels.append(source.soft[covered].argmax(axis=1))
    if not parts or not sum(len(lab) for lab in labels):
        return {}
    return classification_report(np.concatenate(probs), np.concatenate(labels))


def evaluate(model: TFLiteModel, sets: list[EvaluationSet]) -> dict[str, Any]:
    """Metrics of the model on each evaluation set, and on each split's vote-labelled sets pooled."""
    results: dict[str, Any] = {}
    pooled: dict[str, list[tuple[np.ndarray, src.SourceSet]]] = {}
    for evaluation in sets:
        probs = model(evaluation.inputs)
        if evaluation.name == DEV_SET:
            labels = evaluation.source.soft.argmax(axis=1)
            results[DEV_SET] = {
                **classification_report(probs, labels),
                "reliability": reliability(probs, labels),
            }
        else:
            results[evaluation.name] = source_report(probs, evaluation.source)
            split = evaluation.name.split("/", 1)[0]
            if joins_pool(evaluation.source):
                pooled.setdefault(split, []).append((probs, evaluation.source))
    for split, parts in pooled.items():
        report = pooled_report(parts)
        if report:
            results[f"{split}/pooled"] = report
    return results


def plot_confusion(matrix: np.ndarray, names: list[str], title: str, path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            if matrix[i, j]:
                colour = "white" if matrix[i, j] > matrix.max() / 2 else "black"
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(table: dict[str, list], title: str, path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.array(table["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    counts = np.array(table["counts"])
    shown = counts > 0
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar(centres[shown], np.array(table["accuracy"])[shown], width=0.09, alpha=0.7, label="accuracy")
    ax.plot(
        np.array(table["confidence"])[shown],
        np.array(table["accuracy"])[shown],
        "o-",
        color="C1",
        label="per bin",
    )
    for x, y, n in zip(centres[shown], np.array(table["accuracy"])[shown], counts[shown], strict=True):
        ax.text(x, y + 0.02, str(n), ha="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("--run", type=Path, required=True, help="training run folder (run.json)")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--galaxy10-h5", type=Path)
    args = parser.parse_args()
    config = Config.from_dict(json.loads((args.run / "run.json").read_text())["config"])
    sets = evaluation_sets(config, args.data_root, collect_sources(config, args.data_root, args.galaxy10_h5))
    results = evaluate(TFLiteModel(args.model), sets)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
