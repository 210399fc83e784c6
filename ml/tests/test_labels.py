"""The vote-tree derivation of Galaxy10 targets, on hand-written rows."""

import numpy as np
import pytest

from ml import labels

# One galaxy per row; fractions conditional on reaching each task (Hart form).
BASE = {
    "t01": [0.0, 1.0, 0.0],
    "t02": [0.0, 1.0],
    "t03": [0.0, 1.0],
    "t04": [1.0, 0.0],
    "t06": [0.0, 1.0],
    "t07": [1.0, 0.0, 0.0],
    "t08": [0, 0, 0, 0, 0, 0, 0],
    "t09": [0.0, 0.0, 1.0],
    "t10": [1.0, 0.0, 0.0],
}


def target(**changes):
    tasks = {k: np.array([changes.get(k, v)], dtype=float) for k, v in BASE.items()}
    return labels.galaxy10_from_tasks(tasks)[0]


@pytest.mark.parametrize(
    ("changes", "expected_class"),
    [
        ({"t01": [1.0, 0.0, 0.0], "t07": [1.0, 0.0, 0.0]}, 2),
        ({"t01": [1.0, 0.0, 0.0], "t07": [0.0, 1.0, 0.0]}, 3),
        ({"t01": [1.0, 0.0, 0.0], "t07": [0.0, 0.0, 1.0]}, 4),
        ({"t02": [0.0, 1.0], "t03": [1.0, 0.0]}, 5),
        ({"t10": [1.0, 0.0, 0.0]}, 6),
        ({"t10": [0.0, 1.0, 0.0]}, 7),
        ({"t10": [0.0, 0.0, 1.0]}, 7),
        ({"t02": [1.0, 0.0], "t09": [0.0, 0.0, 1.0]}, 8),
        ({"t02": [1.0, 0.0], "t09": [1.0, 0.0, 0.0]}, 9),
        ({"t02": [1.0, 0.0], "t09": [0.0, 1.0, 0.0]}, 9),
        ({"t06": [1.0, 0.0], "t08": [0, 0, 0, 0, 0, 1, 0]}, 1),
        ({"t06": [1.0, 0.0], "t08": [0, 0, 1, 0, 0, 0, 0]}, 0),
        ({"t06": [1.0, 0.0], "t08": [0, 0, 0, 1, 0, 0, 0]}, 0),
    ],
)
def test_unanimous_votes_give_one_class(changes, expected_class):
    result = target(**changes)
    assert result.argmax() == expected_class
    assert result[expected_class] == pytest.approx(1.0)


def test_mixed_votes_multiply_down_the_tree():
    # 60% smooth (half round, half in-between); 40% disk, a quarter of it edge-on
    # without bulge, the rest face-on with 50% bars and tight arms otherwise.
    result = target(
        t01=[0.6, 0.4, 0.0],
        t07=[0.5, 0.5, 0.0],
        t02=[0.25, 0.75],
        t03=[0.5, 0.5],
        t09=[0.0, 0.0, 1.0],
    )
    expected = np.zeros(10)
    expected[[2, 3]] = 0.3
    expected[8] = 0.4 * 0.25
    expected[5] = 0.4 * 0.75 * 0.5
    expected[6] = 0.4 * 0.75 * 0.5
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_odd_features_other_than_disturbance_stay_in_the_regular_tree():
    ring = target(t01=[1.0, 0.0, 0.0], t06=[1.0, 0.0], t08=[1, 0, 0, 0, 0, 0, 0])
    assert ring.argmax() == 2
    half_merger = target(t01=[1.0, 0.0, 0.0], t06=[0.5, 0.5], t08=[0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(half_merger[[1, 2]], [0.5, 0.5], atol=1e-6)


def test_star_votes_are_dropped_and_empty_tasks_are_uniform():
    result = target(t01=[0.3, 0.0, 0.7], t07=[0.0, 0.0, 0.0])
    np.testing.assert_allclose(result[[2, 3, 4]], [1 / 3] * 3, atol=1e-6)
    assert result.sum() == pytest.approx(1.0)


def test_kaggle_cumulative_and_hart_conditional_forms_agree():
    # The same galaxy: 30% smooth, 70% disk; 20% of disks edge-on (bulge rounded),
    # 40% of face-on disks barred, unbarred arms 50% tight / 50% loose; 10% odd,
    # and of those half merger.
    hart = {
        "t01": [0.3, 0.7, 0.0],
        "t02": [0.2, 0.8],
        "t03": [0.4, 0.6],
        "t06": [0.1, 0.9],
        "t07": [0.2, 0.7, 0.1],
        "t08": [0, 0, 0, 0, 0.5, 0.5, 0],
        "t09": [1.0, 0.0, 0.0],
        "t10": [0.5, 0.0, 0.5],
    }
    kaggle_values = {
        "Class1.1": 0.3,
        "Class1.2": 0.7,
        "Class1.3": 0.0,
        "Class2.1": 0.7 * 0.2,
        "Class2.2": 0.7 * 0.8,
        "Class3.1": 0.56 * 0.4,
        "Class3.2": 0.56 * 0.6,
        "Class4.1": 0.56,
        "Class4.2": 0.0,
        "Class6.1": 0.1,
        "Class6.2": 0.9,
        "Class7.1": 0.3 * 0.2,
        "Class7.2": 0.3 * 0.7,
        "Class7.3": 0.3 * 0.1,
        **{f"Class8.{i}": 0.0 for i in range(1, 8)},
        "Class9.1": 0.14,
        "Class9.2": 0.0,
        "Class9.3": 0.0,
        "Class10.1": 0.2,
        "Class10.2": 0.0,
        "Class10.3": 0.2,
    }
    kaggle_values["Class8.5"] = kaggle_values["Class8.6"] = 0.05
    kaggle = labels.galaxy10_from_kaggle({k: np.array([v]) for k, v in kaggle_values.items()})[0]
    from_hart = labels.galaxy10_from_tasks({k: np.array([v], float) for k, v in hart.items()})[0]
    np.testing.assert_allclose(kaggle, from_hart, atol=1e-6)
    assert kaggle[1] == pytest.approx(0.05)


def test_hart_columns_with_suffix():
    rows = {}
    for task, names in labels.HART_COLUMNS.items():
        for position, name in enumerate(names):
            rows[name + "_debiased"] = np.array([float(BASE[task][position])])
    rows["t01_smooth_or_features_a01_smooth_debiased"] = np.array([1.0])
    rows["t01_smooth_or_features_a02_features_or_disk_debiased"] = np.array([0.0])
    assert labels.galaxy10_from_hart(rows)[0].argmax() == 2


def test_gz1_classes_become_group_constraints():
    (constraint,) = labels.gz1_constraints("elliptical")
    assert constraint.classes == (2, 3, 4)
    assert constraint.target == 1.0
    assert labels.gz1_constraints("spiral_clockwise")[0].classes == (5, 6, 7)
    assert labels.gz1_constraints("edge_on")[0].classes == (8, 9)
    assert labels.gz1_constraints("merger")[0].classes == (1,)
    assert labels.gz1_constraints("dont_know") == []
    assert constraint.mask().tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]


def test_gz_decals_fractions_multiply_down_the_tree():
    disk, edge_on, spiral = labels.gz_decals_constraints(0.8, 0.75, 0.5)
    assert disk.classes == (5, 6, 7, 8, 9)
    assert disk.target == pytest.approx(0.8)
    assert edge_on.target == pytest.approx(0.8 * 0.25)
    assert spiral.target == pytest.approx(0.8 * 0.75 * 0.5)


def v2_targets(**changes):
    tasks = {k: np.array([changes.get(k, v)], dtype=float) for k, v in BASE.items()}
    target, coverage = labels.galaxy10_targets(tasks, read_spiral=True)
    return target[0], coverage[0]


def test_armless_face_on_disks_get_no_spiral_target():
    # An unbarred face-on disk with no arms: v1 called it a tight spiral, v2 has no class for it.
    assert target(t04=[0.0, 1.0]).argmax() == 6
    result, coverage = v2_targets(t04=[0.0, 1.0])
    assert coverage == pytest.approx(0.0)
    # The row stays a distribution (the v1 one), but its coverage gives it no weight.
    np.testing.assert_allclose(result, target(t04=[0.0, 1.0]), atol=1e-6)


def test_partly_armless_disks_keep_the_armed_share_and_lose_weight():
    # Half smooth (round), half unbarred face-on disk of which 40% show arms (tight).
    result, coverage = v2_targets(t01=[0.5, 0.5, 0.0], t04=[0.4, 0.6])
    assert coverage == pytest.approx(0.5 + 0.5 * 0.4)
    np.testing.assert_allclose(result[[2, 6]], [0.5 / 0.7, 0.2 / 0.7], atol=1e-6)
    assert result.sum() == pytest.approx(1.0)


def test_bars_and_other_branches_do_not_read_the_spiral_question():
    barred, coverage = v2_targets(t03=[1.0, 0.0], t04=[0.0, 1.0])
    assert barred.argmax() == 5
    assert coverage == pytest.approx(1.0)
    smooth, coverage = v2_targets(t01=[1.0, 0.0, 0.0], t04=[0.0, 0.0])
    assert smooth.argmax() == 2
    assert coverage == pytest.approx(1.0)


def test_v1_targets_ignore_the_spiral_question():
    np.testing.assert_allclose(target(t04=[0.0, 1.0]), target(t04=[1.0, 0.0]), atol=1e-6)


def test_agreement_is_the_largest_target_probability():
    assert labels.agreement(np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])).tolist() == [0.5, 1.0]
