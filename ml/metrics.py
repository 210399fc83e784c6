"""Classification and calibration metrics (numpy only)."""

from __future__ import annotations

import numpy as np

from classifier.core.galaxy10 import GROUP_OF_CLASS, NUM_CLASSES
from classifier.core.statistics import wilson_interval

# (class, group) -> 1 where the class belongs to the group: class probabilities @ it = group probabilities.
GROUP_MATRIX = np.zeros((NUM_CLASSES, 4))
GROUP_MATRIX[np.arange(NUM_CLASSES), GROUP_OF_CLASS] = 1.0

# Galaxy10 DECaLS class sizes: the served prior and the weights of the Galaxy10-frequency metrics.
GALAXY10_COUNTS = np.array([1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873], float)
# A vote-labelled galaxy is scored against its top class only where Galaxy10 classes hold at
# least this share of its votes (with labels.read_spiral, armless face-on disks fall below it).
MIN_COVERAGE = 0.5


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    top = np.argsort(-probs, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def group_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy over the 4 coarse groups: disturbed/merging, smooth, face-on disk, edge-on."""
    predicted = (probs @ GROUP_MATRIX).argmax(axis=1)
    return float((predicted == np.asarray(GROUP_OF_CLASS)[labels]).mean())


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def per_class_recall(matrix: np.ndarray) -> list[float | None]:
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / totals[i]) if totals[i] else None for i in range(len(matrix))]


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over the classes present in the labels."""
    scores = []
    for i in range(len(matrix)):
        support = matrix[i].sum()
        if not support:
            continue
        predicted = matrix[:, i].sum()
        precision = matrix[i, i] / predicted if predicted else 0.0
        recall = matrix[i, i] / support
        scores.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores)) if scores else 0.0


def weighted_recall(matrix: np.ndarray, class_weights: np.ndarray | None = None) -> float:
    """Accuracy with each present class weighted by ``class_weights`` (equal: class-balanced).

    With Galaxy10's class sizes it is the accuracy expected on a Galaxy10-like mix of classes,
    whatever mix the evaluation set has.
    """
    totals = matrix.sum(axis=1)
    present = totals > 0
    if not present.any():
        return 0.0
    weights = np.ones(len(matrix)) if class_weights is None else np.asarray(class_weights, float)
    recall = np.diag(matrix)[present] / totals[present]
    return float((recall * weights[present]).sum() / weights[present].sum())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict[str, list]:
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    mean_confidence = np.bincount(which, confidence, bins) / np.maximum(counts, 1)
    accuracy = np.bincount(which, correct.astype(float), bins) / np.maximum(counts, 1)
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "confidence": mean_confidence.tolist(),
        "accuracy": accuracy.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    table = reliability(probs, labels, bins)
    counts = np.array(table["counts"], dtype=float)
    gaps = np.abs(np.array(table["accuracy"]) - np.array(table["confidence"]))
    return float((counts * gaps).sum() / max(1.0, counts.sum()))


def classification_report(probs: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    labels = np.asarray(labels, dtype=np.int64)
    matrix = confusion_matrix(labels, probs.argmax(axis=1))
    top1 = top_k_accuracy(probs, labels, 1)
    return {
        "n": len(labels),
        "top1": top1,
        "top1_interval95": list(wilson_interval(round(top1 * len(labels)), len(labels))),
        "balanced_accuracy": weighted_recall(matrix),
        "galaxy10_weighted_accuracy": weighted_recall(matrix, GALAXY10_COUNTS),
        "top2": top_k_accuracy(probs, labels, 2),
        "group4": group_accuracy(probs, labels),
        "macro_f1": macro_f1(matrix),
        "per_class_recall": per_class_recall(matrix),
        "ece": expected_calibration_error(probs, labels),
        "confusion_matrix": matrix.tolist(),
    }


def group_vote_metrics(
    probs: np.ndarray, masks: np.ndarray, targets: np.ndarray, weights: np.ndarray
) -> dict[str, float]:
    """Agreement with partial (group) vote fractions, for images that have them.

    ``masks`` (N, G, classes) picks each constraint's classes, ``targets`` (N, G) is its vote
    fraction and ``weights`` (N, G) > 0 marks the constraints an image has. group_abs_error is
    the mean |predicted - voted| fraction; coarse_accuracy, over unanimous constraints, how
    often the prediction puts more than half its probability there.
    """
    has_group = weights.sum(axis=1) > 0
    if not has_group.any():
        return {}
    group_p = (probs[has_group, None, :] * masks[has_group]).sum(-1)
    used = weights[has_group] > 0
    metrics = {"group_abs_error": float(np.abs(group_p - targets[has_group])[used].mean())}
    certain = (targets[has_group] == 1.0) & used
    if certain.any():
        metrics["coarse_accuracy"] = float((group_p[certain] > 0.5).mean())
    return metrics
