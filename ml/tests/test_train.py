"""The v2 training protocol pieces: agreement weights, consistency, target-domain augmentation,
the served prior, DECaLS adaptation splits and pooled validation."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from classifier.core.galaxy10 import NUM_CLASSES
from ml import cache, labels, sources
from ml.augment import augmented_views
from ml.calibration import prior_adjustment
from ml.config import load_config
from ml.dataset import Split, prepare_splits
from ml.losses import consistency_loss, loss_terms
from ml.metrics import GALAXY10_COUNTS
from ml.scoring import pooled_validation


def soft_batch(targets: np.ndarray, soft_weight: np.ndarray | None = None) -> dict:
    n = len(targets)
    return {
        "soft": torch.tensor(targets, dtype=torch.float32),
        "soft_weight": torch.tensor(np.ones(n) if soft_weight is None else soft_weight, dtype=torch.float32),
        "group_masks": torch.zeros(n, 3, NUM_CLASSES),
        "group_targets": torch.zeros(n, 3),
        "group_weights": torch.zeros(n, 3),
    }


def test_agreement_power_weights_diffuse_targets_down():
    clear = np.eye(NUM_CLASSES)[[2]]
    diffuse = np.full((1, NUM_CLASSES), 0.02)
    diffuse[0, 2] = 0.82 - 0.2  # largest probability 0.62, a diffuse vote
    diffuse[0, 3] = 0.2
    diffuse /= diffuse.sum()
    batch = soft_batch(np.concatenate([clear, diffuse]))
    logits = torch.zeros(2, NUM_CLASSES)
    weights = torch.ones(NUM_CLASSES)
    plain = loss_terms(logits, batch, weights, 0.5, agreement_power=0.0)
    weighted = loss_terms(logits, batch, weights, 0.5, agreement_power=1.0)
    assert weighted[0] == pytest.approx(float(plain[0]))  # a unanimous target keeps its weight
    assert weighted[1] == pytest.approx(float(plain[1]) * diffuse.max(), rel=1e-5)


def test_coverage_weight_silences_targets_galaxy10_has_no_class_for():
    batch = soft_batch(np.eye(NUM_CLASSES)[[6, 6]], soft_weight=np.array([1.0, 0.0]))
    losses = loss_terms(torch.zeros(2, NUM_CLASSES), batch, torch.ones(NUM_CLASSES), 0.5)
    assert losses[0] > 0
    assert losses[1] == 0


def test_consistency_pulls_the_second_view_towards_the_first_only():
    first = torch.tensor([[3.0, 0.0, 0.0]], requires_grad=True)
    agreeing = torch.tensor([[3.0, 0.0, 0.0]], requires_grad=True)
    disagreeing = torch.tensor([[0.0, 3.0, 0.0]], requires_grad=True)
    assert consistency_loss(first, agreeing) < consistency_loss(first, disagreeing)
    consistency_loss(first, disagreeing).sum().backward()
    assert first.grad is None  # the first view is the (fixed) target
    assert disagreeing.grad[0, 0] < 0  # raising the first view's class lowers the loss


@pytest.mark.parametrize("name", ["balanced", "galaxy10"])
def test_prior_adjustment_swaps_the_learnt_prior_for_the_served_one(name):
    learnt = np.array([0.02, 0.03, 0.3, 0.2, 0.05, 0.1, 0.1, 0.1, 0.03, 0.07])
    adjusted = torch.softmax(torch.tensor(np.log(learnt) + prior_adjustment(learnt, name)), dim=0)
    expected = np.full(NUM_CLASSES, 0.1) if name == "balanced" else GALAXY10_COUNTS / GALAXY10_COUNTS.sum()
    np.testing.assert_allclose(adjusted.numpy(), expected, atol=1e-5)
    assert not prior_adjustment(learnt, "training").any()
    with pytest.raises(ValueError, match="unknown prior"):
        prior_adjustment(learnt, "sdss")


def test_target_domain_rows_get_no_sdss_to_decals_changes():
    # A flat grey image stays flat under any rotation, flip, scale or shift, so a non-bridged
    # row must come back exactly flat when colour gains and brightness are off.
    pixels = torch.full((2, 40, 40, 3), 100, dtype=torch.uint8)
    params = replace(
        load_config().augment,
        colour_jitter=0.0,
        brightness=0.0,
        sky_probability=1.0,
        neighbour_probability=1.0,
        noise_sigma=0.1,
    )
    bridge = torch.tensor([True, False])
    views = augmented_views(pixels, torch.ones(2), 32, params, torch.Generator().manual_seed(0), bridge)
    flat = torch.full_like(views[1], 100 / 255)
    torch.testing.assert_close(views[1], flat, atol=1e-5, rtol=0)
    assert (views[0] - flat).abs().max() > 0.05


def write_images(folder, count):
    folder.mkdir(parents=True)
    paths = []
    for index in range(count):
        path = folder / f"{index}.png"
        Image.new("RGB", (48, 48), (index * 5 % 255, 40, 60)).save(path)
        paths.append(str(path))
    return paths


def test_adaptation_drops_decals_group_targets_in_training_only(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    images = write_images(tmp_path / "decals", 40)
    constraints = [labels.gz_decals_constraints(0.7, 0.8, 0.6) for _ in images]
    decals = sources.group_source("gz_decals_partial", images, images.copy(), constraints, 0.85)
    config = load_config(overrides={"image_size": 32})

    splits = prepare_splits([decals], config)
    (train,), (val,), (test,) = splits["train"], splits["val"], splits["test"]
    assert train.consistency
    assert train.target_domain
    assert not train.source.group_weights.any()
    assert val.source.group_weights.any()
    assert test.source.group_weights.any()
    assert not val.consistency

    config = config.with_overrides({"train.decals_partial": "labels"})
    (train,) = prepare_splits([decals], config)["train"]
    assert not train.consistency
    assert train.source.group_weights.any()


def test_pooled_validation_pools_covered_vote_galaxies_only():
    targets = np.eye(NUM_CLASSES, dtype=np.float32)[[2, 6, 6, 8]]
    vote = sources.soft_source("gz2_hart", ["a", "b", "c", "d"], ["a", "b", "c", "d"], targets, 0.6)
    vote.soft_weight[:] = [1.0, 1.0, 0.2, 0.6]  # the third galaxy is mostly an armless disk
    split = Split(vote, np.zeros((4, 8, 8, 3), np.uint8), 1.0)
    logits = torch.tensor(np.eye(NUM_CLASSES)[[2, 7, 6, 8]] * 5.0, dtype=torch.float32)
    pooled = pooled_validation([logits], [split])
    assert pooled["n"] == 3
    assert pooled["top1"] == pytest.approx(2 / 3)
    assert pooled["balanced_accuracy"] == pytest.approx((1 + 0 + 1) / 3)


def tiny_galaxy10_h5(tmp_path, monkeypatch) -> np.random.Generator:
    """A generated 40-image Galaxy10 file at tmp_path/g10.h5, the cache in tmp_path; the rng after it."""
    from ml.tests.test_pipeline import galaxy_like
    from ml.tests.test_sources import write_h5

    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    rng = np.random.default_rng(0)
    labels_ = np.repeat(np.arange(10), 4)
    write_h5(tmp_path / "g10.h5", np.stack([galaxy_like(int(c), rng) for c in labels_]), labels_)
    return rng


@pytest.mark.slow
def test_training_with_decals_adaptation_stops_at_the_step_budget(tmp_path, monkeypatch):
    from ml.tests.test_pipeline import galaxy_like
    from ml.train import train

    rng = tiny_galaxy10_h5(tmp_path, monkeypatch)
    decals = tmp_path / "data" / "gz_decals_partial"
    (decals / "images").mkdir(parents=True)
    header = (
        "file,iauname,ring,smooth-or-featured_featured-or-disk_fraction,"
        "disk-edge-on_no_fraction,has-spiral-arms_no_fraction"
    )
    rows = [header]
    for index in range(20):
        Image.fromarray(galaxy_like(index % 10, rng)).save(decals / "images" / f"{index}.png")
        rows.append(f"{index}.png,J{index},0,0.7,0.8,0.6")
    (decals / "labels.csv").write_text("\n".join(rows) + "\n")
    config = load_config(
        overrides={
            "image_size": 32,
            "train.epochs": 3,
            "train.batch_size": 8,
            "train.max_steps": 3,
            "prior.samples": 16,
        }
    )

    run = train(config, tmp_path / "run", tmp_path / "data", galaxy10_h5=tmp_path / "g10.h5")

    assert run["train_steps"] == 3
    assert len(run["history"]) == 1  # the budget ended the schedule inside the first epoch
    assert run["selected_epoch"] == 1
    assert run["prior"]["served"] == config.prior.served
    assert sum(run["prior"]["learnt"]) == pytest.approx(1.0, abs=1e-3)
    assert (tmp_path / "run" / "model.pt").is_file()


@pytest.mark.slow
def test_train_seed_moves_the_training_but_not_the_split(tmp_path, monkeypatch):
    from ml.train import train

    tiny_galaxy10_h5(tmp_path, monkeypatch)
    overrides = {"image_size": 32, "train.batch_size": 8, "train.max_steps": 2, "prior.samples": 16}

    def run(name, **extra):
        config = load_config(overrides={**overrides, **extra})
        result = train(config, tmp_path / name, tmp_path / "none", galaxy10_h5=tmp_path / "g10.h5")
        return result, torch.load(tmp_path / name / "model.pt")

    first, first_weights = run("a")
    _, again_weights = run("b", **{"train.seed": load_config().seed})
    other, other_weights = run("c", **{"train.seed": 7})

    assert first["splits"] == other["splits"]
    assert first["sources"] == other["sources"]
    # The default train seed is the top-level seed: naming it changes nothing.
    assert all(torch.equal(first_weights[k], again_weights[k]) for k in first_weights)
    assert not all(torch.equal(first_weights[k], other_weights[k]) for k in first_weights)
