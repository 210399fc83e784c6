"""The vote likelihood (Dirichlet-multinomial), the vote head, and the GZ DECaLS votes source."""

import itertools
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.special import gammaln
from scipy.stats import dirichlet_multinomial

from classifier.core.galaxy10 import NUM_CLASSES
from ml import sources, votes
from ml.config import load_config
from ml.dataset import batch_tensors, collect_sources, prepare_splits, vote_soft_weight
from ml.losses import make_vote_head, vote_terms
from ml.scoring import selection_score
from ml.tests.test_decals_validation import counts_row, write_table
from ml.vote_loss import VoteHead, concentrations, dirichlet_multinomial_log_likelihood, vote_nll


@pytest.mark.parametrize(
    ("counts", "alpha"),
    [([3, 0, 2], [1.5, 2.0, 7.0]), ([0, 40], [1.1, 90.0]), ([12, 5, 1, 0, 2], [1.0, 3.0, 2.5, 1.2, 50.0])],
)
def test_log_likelihood_matches_scipy(counts, alpha):
    ours = dirichlet_multinomial_log_likelihood(
        torch.tensor([counts], dtype=torch.float64), torch.tensor([alpha], dtype=torch.float64)
    )
    expected = dirichlet_multinomial.logpmf(counts, alpha, sum(counts))
    assert float(ours[0]) == pytest.approx(expected, rel=1e-9)


def test_log_likelihood_is_a_distribution_over_every_split_of_the_votes():
    # Brute force for a tiny N: the probabilities of all ways 4 votes fall on 3 answers sum to 1,
    # and each equals the Dirichlet-multinomial written with scipy's gammaln.
    alpha = np.array([1.3, 4.0, 2.2])
    splits = [c for c in itertools.product(range(5), repeat=3) if sum(c) == 4]
    logp = dirichlet_multinomial_log_likelihood(
        torch.tensor(splits, dtype=torch.float64), torch.tensor(np.tile(alpha, (len(splits), 1)))
    ).numpy()
    assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-12)
    k = np.array(splits[3], float)
    manual = (
        gammaln(5)
        + gammaln(alpha.sum())
        - gammaln(4 + alpha.sum())
        + (gammaln(k + alpha) - gammaln(k + 1) - gammaln(alpha)).sum()
    )
    assert logp[3] == pytest.approx(manual)


def test_questions_nobody_answered_contribute_nothing():
    outputs = torch.randn(2, votes.NUM_ANSWERS, requires_grad=True)
    assert torch.equal(vote_nll(outputs, torch.zeros(2, votes.NUM_ANSWERS)), torch.zeros(2))
    only_smooth = torch.from_numpy(counts_row(smooth_or_featured__smooth=7)[None].astype(np.float32))
    alpha = concentrations(outputs[:1, votes.ANSWER_SLICES["smooth-or-featured"]])
    expected = -dirichlet_multinomial_log_likelihood(only_smooth[:, :3], alpha)
    assert torch.allclose(vote_nll(outputs[:1], only_smooth), expected)
    vote_nll(outputs[:1], only_smooth).sum().backward()
    answered = outputs.grad[0, votes.ANSWER_SLICES["smooth-or-featured"]]
    assert answered.abs().sum() > 0
    assert outputs.grad[0, 3:].abs().sum() == 0  # unanswered questions get no gradient
    assert outputs.grad[1].abs().sum() == 0


def test_a_five_vote_galaxy_weighs_less_than_a_forty_vote_one():
    outputs = torch.zeros(2, votes.NUM_ANSWERS, requires_grad=True)
    # The same 60/40 split of smooth-or-featured, seen by 5 and by 40 volunteers.
    counts = np.stack(
        [
            counts_row(smooth_or_featured__smooth=3, smooth_or_featured__featured_or_disk=2),
            counts_row(smooth_or_featured__smooth=24, smooth_or_featured__featured_or_disk=16),
        ]
    )
    loss = vote_nll(outputs, torch.from_numpy(counts.astype(np.float32)))
    assert loss[0] < loss[1]
    loss.sum().backward()
    few, many = outputs.grad.norm(dim=1)
    assert many > 2 * few


def test_concentrations_stay_between_one_and_a_hundred():
    alpha = concentrations(torch.tensor([[-1e4, 0.0, 1e4]]))
    assert float(alpha.min()) >= 1.0
    assert float(alpha.max()) <= 100.0


def test_vote_head_reads_the_classifiers_features_without_changing_its_state():
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, NUM_CLASSES))
    keys = set(classifier.state_dict())
    head = VoteHead(6)
    head.attach(classifier[1])
    with pytest.raises(RuntimeError, match="no classifier forward pass"):
        VoteHead(6)()
    x = torch.randn(4, 2, 3)
    classifier(x)
    assert head().shape == (4, votes.NUM_ANSWERS)
    assert torch.equal(head(), head.linear(x.flatten(1)))
    assert set(classifier.state_dict()) == keys  # the exported classifier is untouched


def test_vote_terms_add_the_likelihood_of_first_views_only():
    classifier = torch.nn.Module()
    classifier._fc = torch.nn.Linear(5, NUM_CLASSES)
    splits = [SimpleNamespace(source=SimpleNamespace(votes=np.zeros((1, votes.NUM_ANSWERS))))]
    head = make_vote_head(classifier, splits, 0.5)
    assert make_vote_head(classifier, splits, 0.0) is None
    assert make_vote_head(classifier, [SimpleNamespace(source=SimpleNamespace(votes=None))], 0.5) is None
    features = torch.randn(3, 5)  # two first views and one second view
    classifier._fc(features)
    counts = torch.from_numpy(np.stack([counts_row(merging__none=9), counts_row()]).astype(np.float32))
    base = torch.ones(2)
    out = vote_terms(base, head, {"votes": counts}, 0.5)
    expected = 1 + 0.5 * vote_nll(head.linear(features[:2]), counts)
    assert torch.allclose(out, expected)
    assert out[1] == 1  # no votes, no term
    assert torch.equal(vote_terms(base, head, {}, 0.5), base)


def test_soft_weight_grows_with_the_number_of_votes():
    counts = np.stack(
        [counts_row(smooth_or_featured__smooth=5), counts_row(smooth_or_featured__smooth=40), counts_row()]
    )
    settings = replace(load_config().train, votes_soft_weight=1.0, votes_full_weight=20)
    np.testing.assert_allclose(vote_soft_weight(counts, settings), [0.25, 1.0, 0.0])
    assert not vote_soft_weight(counts, replace(settings, votes_soft_weight=0.0)).any()


def test_selection_score_follows_the_switch():
    record = {
        "epoch": 3,
        "val/pooled": {"top1": 0.6},
        "val/gz_decals_votes": {"top1": 0.5, "cross_entropy": 1.0},
    }
    assert selection_score(record, "sdss_pooled") == 0.6
    assert selection_score(record, "decals") == pytest.approx(0.499)
    with pytest.raises(ValueError, match="select_on"):
        selection_score(record, "dev")


def generated_votes_root(tmp_path, n=60):
    """A gz_decals_votes folder: n generated galaxies with small images, the first 40 with 30
    votes (some in validation folds), two of them exact Galaxy10 members, the rest 3 votes."""
    from PIL import Image

    root = tmp_path / "gz_decals_votes"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        total = 30 if i < 40 else 3
        smooth = int(rng.integers(0, total + 1))
        counts = counts_row(
            smooth_or_featured__smooth=smooth,
            smooth_or_featured__featured_or_disk=total - smooth,
            how_rounded__round=smooth,
            disk_edge_on__yes=total - smooth,
            edge_on_bulge__rounded=total - smooth,
            merging__none=total,
        )
        rows.append((f"J{i:04d}", counts, 2 if i in (0, 1) else -1))
        pixels = rng.integers(0, 255, size=(24, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"J{i:04d}.jpg")
    write_table(root / "labels.csv", rows)
    return root


def test_votes_source_holds_out_validation_folds_and_members(tmp_path):
    root = generated_votes_root(tmp_path)
    config = load_config(overrides={"train.gz_decals_votes": True})
    source = sources.load_gz_decals_votes(root, 0.85, config)
    assert len(source) == 60
    assert source.votes.shape == (60, votes.NUM_ANSWERS)
    parts = sources.split_indices(source, config)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(60))
    assert set(parts["test"]) <= {0, 1}
    val = set(parts["val"].tolist())
    assert val
    assert val <= set(range(40))
    assert {0, 1}.isdisjoint(parts["train"].tolist())
    assert set(range(40, 60)) <= set(parts["train"].tolist())  # few-vote galaxies all train
    # The same split again, and through subset (the train split carries its votes).
    again = sources.split_indices(sources.load_gz_decals_votes(root, 0.85, config), config)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    train = source.subset(parts["train"])
    np.testing.assert_array_equal(train.votes, source.votes[parts["train"]])


def test_collect_sources_adds_the_votes_only_when_switched_on(tmp_path):
    generated_votes_root(tmp_path)
    off = collect_sources(load_config(overrides={"train.gz_decals_votes": False}), tmp_path)
    on = collect_sources(load_config(), tmp_path)  # on in the committed configuration
    assert [s.name for s in off] == []
    assert [s.name for s in on] == ["gz_decals_votes"]


def test_training_splits_weight_soft_targets_by_votes_and_batch_the_counts(tmp_path, monkeypatch):
    generated_votes_root(tmp_path)
    monkeypatch.setattr("ml.cache.CACHE_DIR", tmp_path / "cache")
    config = load_config(overrides={"train.gz_decals_votes": True})
    (source,) = collect_sources(config, tmp_path)
    splits = prepare_splits([source], config)
    train = splits["train"][0]
    answered = train.source.votes[:, votes.ANSWER_SLICES["smooth-or-featured"]].sum(axis=1)
    raw = source.subset(sources.split_indices(source, config)["train"]).soft_weight
    np.testing.assert_allclose(train.source.soft_weight, raw * np.minimum(1.0, answered / 20))
    assert train.target_domain
    assert (
        splits["val"][0].source.soft_weight.tolist()
        == source.subset(sources.split_indices(source, config)["val"]).soft_weight.tolist()
    )  # validation keeps the unweighted coverage its scores filter on
    batch = batch_tensors(splits["train"], [(0, 0), (0, 1)])
    assert batch["votes"].shape == (2, votes.NUM_ANSWERS)
