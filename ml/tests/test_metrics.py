import numpy as np
import pytest

from ml import metrics


def one_hot_probs(predicted, confidence=1.0):
    probs = np.full((len(predicted), 10), (1 - confidence) / 9)
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


def test_report_on_a_known_confusion():
    labels = np.array([0, 0, 2, 2, 5, 8])
    predicted = np.array([0, 1, 2, 3, 5, 9])
    report = metrics.classification_report(one_hot_probs(predicted), labels)
    assert report["top1"] == pytest.approx(3 / 6)
    # 0->1 stays in the disturbed group, 2->3 in smooth, 8->9 in edge-on.
    assert report["group4"] == pytest.approx(1.0)
    assert report["per_class_recall"][0] == pytest.approx(0.5)
    assert report["per_class_recall"][4] is None
    assert report["confusion_matrix"][8][9] == 1
    # F1 per present class: 0: p=1 r=.5 -> 2/3; 2: 2/3; 5: 1; 8: 0.
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1 + 0) / 4)


def test_top2_counts_the_runner_up():
    probs = np.zeros((2, 10))
    probs[0, [3, 4]] = [0.6, 0.4]
    probs[1, [3, 4]] = [0.6, 0.4]
    labels = np.array([4, 5])
    assert metrics.top_k_accuracy(probs, labels, 1) == 0.0
    assert metrics.top_k_accuracy(probs, labels, 2) == 0.5


def test_calibration_error():
    labels = np.zeros(10, dtype=int)
    confident_right = one_hot_probs(np.zeros(10, dtype=int))
    assert metrics.expected_calibration_error(confident_right, labels) == pytest.approx(0.0)
    # 90% confident and right half the time: a gap of 0.4.
    half_right = one_hot_probs(np.array([0, 1] * 5), confidence=0.9)
    assert metrics.expected_calibration_error(half_right, labels) == pytest.approx(0.4)


def test_wilson_interval_known_values():
    # 19 of 30 (63.3%): the 95% Wilson interval is 45.5%-78.1%.
    low, high = metrics.wilson_interval(19, 30)
    assert low == pytest.approx(0.4551, abs=1e-3)
    assert high == pytest.approx(0.7813, abs=1e-3)
    assert metrics.wilson_interval(0, 10)[0] == 0.0
    assert metrics.wilson_interval(10, 10)[1] == 1.0
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)


def test_class_balanced_and_galaxy10_weighted_accuracy():
    # Class 2: 3 of 4 right; class 4 (rare in Galaxy10): 0 of 1.
    labels = np.array([2, 2, 2, 2, 4])
    predicted = np.array([2, 2, 2, 3, 2])
    report = metrics.classification_report(one_hot_probs(predicted), labels)
    assert report["top1"] == pytest.approx(3 / 5)
    assert report["balanced_accuracy"] == pytest.approx((0.75 + 0.0) / 2)
    counts = metrics.GALAXY10_COUNTS
    assert report["galaxy10_weighted_accuracy"] == pytest.approx(0.75 * counts[2] / (counts[2] + counts[4]))
    assert report["top1_interval95"] == pytest.approx(list(metrics.wilson_interval(3, 5)))
