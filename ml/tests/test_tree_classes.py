"""Galaxy10 probabilities from predicted vote fractions, through the Galaxy Zoo decision tree."""

import numpy as np
import pytest

from classifier.core.galaxy10 import NUM_CLASSES
from ml import votes
from ml.metrics import MIN_COVERAGE
from ml.tests.test_decals_validation import BRANCH_EXAMPLES, as_fractions, counts_row
from ml.tree_classes import blend, coverage_summary, tree_probabilities

FEATURED_FACE_ON = {
    "smooth_or_featured__featured_or_disk": 30,
    "disk_edge_on__no": 30,
    "merging__none": 30,
}


@pytest.mark.parametrize(("answers", "expected"), BRANCH_EXAMPLES)
def test_fractions_that_name_a_branch_give_its_galaxy10_class(answers, expected):
    probs, coverage = tree_probabilities(as_fractions(counts_row(**answers)))
    assert probs.shape == (1, NUM_CLASSES)
    assert probs[0].argmax() == expected
    assert probs[0, expected] > 0.6
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)
    assert coverage[0] > MIN_COVERAGE


def test_fractions_and_counts_of_the_same_proportions_give_the_same_probabilities():
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 40, size=(50, votes.NUM_ANSWERS))
    # A question nobody answered: all zero both ways, so the tree's uniform fallback reads both.
    counts[:5, votes.ANSWER_SLICES["bar"]] = 0
    fractions = as_fractions(counts, even=False)
    from_counts, coverage_counts = votes.vote_targets(counts, read_spiral=True)
    from_fractions, coverage_fractions = tree_probabilities(fractions, read_spiral=True)
    np.testing.assert_allclose(from_fractions, from_counts, atol=1e-6)
    np.testing.assert_allclose(coverage_fractions, coverage_counts, atol=1e-6)
    # Any scale per galaxy and question, not just fractions that sum to one.
    scaled = fractions.copy()
    for part in votes.ANSWER_SLICES.values():
        scaled[:, part] *= rng.uniform(0.1, 10.0, size=(50, 1))
    np.testing.assert_allclose(tree_probabilities(scaled)[0], from_counts, atol=1e-6)


def test_mass_outside_galaxy10_is_renormalised_over_the_ten_and_reported_as_coverage():
    # Half the face-on unbarred disk votes say "no arms": a lenticular has no Galaxy10 class.
    half_armless = counts_row(
        **FEATURED_FACE_ON,
        bar__no=30,
        has_spiral_arms__yes=15,
        has_spiral_arms__no=15,
        spiral_winding__tight=30,
    )
    probs, coverage = tree_probabilities(as_fractions(half_armless), read_spiral=True)
    assert coverage[0] == pytest.approx(0.5, abs=1e-6)
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)
    assert probs[0].argmax() == 6
    # Without the spiral question the armless share stays with the spirals: coverage 1.
    assert tree_probabilities(as_fractions(half_armless), read_spiral=False)[1][0] == pytest.approx(1.0)


def test_slightly_negative_quantised_fractions_are_read_as_zero():
    barred = counts_row(**FEATURED_FACE_ON, bar__strong=10, bar__no=20, has_spiral_arms__yes=30)
    fractions = as_fractions(barred)
    noisy = fractions.copy()
    # Weak bar: summed with strong into GZ2's "bar" before the tree's own clipping could see it.
    noisy[0, votes.ANSWER_SLICES["bar"].start + 1] = -0.004
    np.testing.assert_allclose(tree_probabilities(noisy)[0], tree_probabilities(fractions)[0], atol=1e-6)


def test_a_wrong_width_is_refused():
    with pytest.raises(ValueError, match="vote fractions"):
        tree_probabilities(np.ones((2, NUM_CLASSES)))


def test_blend_is_the_mean_distribution():
    head = np.eye(NUM_CLASSES)[[2, 6]]
    tree = np.eye(NUM_CLASSES)[[3, 6]]
    mixed = blend(head, tree)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0)
    assert mixed[0, 2] == mixed[0, 3] == pytest.approx(0.5)
    assert mixed[1, 6] == pytest.approx(1.0)


def test_coverage_summary_counts_galaxies_below_the_scoring_threshold():
    summary = coverage_summary(np.array([1.0, 0.9, MIN_COVERAGE - 0.1, 0.0]))
    assert summary["n"] == 4
    assert summary["mean"] == pytest.approx((1.9 + MIN_COVERAGE - 0.1) / 4)
    assert summary["below_min_coverage"] == 2
