"""ml/experiments/teacher.py and its place in training: galamo's groups as a target on DECaLS
training rows only."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from classifier.core.galaxy10 import GROUP_OF_CLASS, NUM_CLASSES
from ml import cache, labels, sources
from ml.config import load_config
from ml.dataset import group_targets, prepare_splits
from ml.losses import consistency_loss, target_domain_terms, teacher_loss
from ml.tests.test_train import write_images


def decals_source(tmp_path, count=40):
    images = write_images(tmp_path / "decals", count)
    constraints = [labels.gz_decals_constraints(0.7, 0.8, 0.6) for _ in images]
    names = [f"J{index:03d}.png" for index in range(count)]
    return sources.group_source("gz_decals_partial", images, names, constraints, 0.85)


def teacher_file(path, keys, split="train", source="gz_decals_partial"):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=len(keys))
    table = {"source": source, "split": split, "probabilities": dict(zip(keys, probs.tolist(), strict=True))}
    path.write_text(json.dumps(table))
    return probs


def test_group_targets_are_the_teachers_class_probabilities_summed_by_group(tmp_path):
    source = decals_source(tmp_path, 6)
    probs = teacher_file(tmp_path / "t.json", source.keys)
    groups = group_targets(tmp_path / "t.json", source)
    assert groups.shape == (6, 4)
    np.testing.assert_allclose(groups.sum(axis=1), 1.0, atol=1e-6)
    # Edge-on is the sum of the two edge-on classes, whatever the file's row order.
    edge_on = [c for c in range(NUM_CLASSES) if GROUP_OF_CLASS[c] == 3]
    np.testing.assert_allclose(groups[:, 3], probs[:, edge_on].sum(axis=1), atol=1e-5)
    reordered = source.subset([5, 4, 3, 2, 1, 0])
    np.testing.assert_allclose(group_targets(tmp_path / "t.json", reordered), groups[::-1], atol=1e-6)


def test_a_teacher_file_that_is_not_exactly_the_training_split_is_refused(tmp_path):
    source = decals_source(tmp_path, 6)
    teacher_file(tmp_path / "missing.json", source.keys[:5])
    with pytest.raises(ValueError, match="lacks 1 training images"):
        group_targets(tmp_path / "missing.json", source)
    # An entry for an image outside the training split could be an evaluation image.
    teacher_file(tmp_path / "extra.json", [*source.keys, "J999.png"])
    with pytest.raises(ValueError, match="1 images outside"):
        group_targets(tmp_path / "extra.json", source)
    teacher_file(tmp_path / "val.json", source.keys, split="val")
    with pytest.raises(ValueError, match="not gz_decals_partial/train"):
        group_targets(tmp_path / "val.json", source)


def test_only_the_decals_training_split_gets_the_teacher_and_only_with_a_weight(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    source = decals_source(tmp_path)
    config = load_config(overrides={"image_size": 32})
    (train,) = prepare_splits([source], config)["train"]
    teacher_file(tmp_path / "t.json", train.source.keys)

    assert train.teacher is None  # the committed weight is 0: no file is read
    config = config.with_overrides(
        {"train.teacher_weight": 0.25, "train.teacher_file": str(tmp_path / "t.json")}
    )
    splits = prepare_splits([source], config)
    (train,), (val,), (test,) = splits["train"], splits["val"], splits["test"]
    assert train.teacher.shape == (len(train.source), 4)
    assert val.teacher is None
    assert test.teacher is None


def test_the_teacher_term_is_lowest_where_the_model_agrees_with_the_teacher():
    teacher = torch.tensor([[0.1, 0.1, 0.7, 0.1]])
    disk = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 0.0, 0.0]])
    smooth = torch.tensor([[0.0, 0.0, 4.0, 4.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert teacher_loss(disk, teacher) < teacher_loss(smooth, teacher)
    # Group-level only: moving probability between two disk classes changes nothing.
    barred = disk.clone()
    barred[0, 5] = 4.0 + np.log(3.0)
    barred[0, 6:8] = -20.0
    assert float(teacher_loss(barred, teacher)) == pytest.approx(float(teacher_loss(disk, teacher)), rel=1e-4)


def test_the_teacher_term_is_added_on_taught_rows_only_and_zero_weight_changes_nothing():
    torch.manual_seed(0)
    first, second = torch.randn(4, NUM_CLASSES), torch.randn(2, NUM_CLASSES)
    teacher = torch.tensor(np.random.default_rng(0).dirichlet(np.ones(4), size=4), dtype=torch.float32)
    batch = {
        "consistency": torch.tensor([False, True, True, False]),
        "has_teacher": torch.tensor([False, True, True, False]),
        "teacher": teacher,
    }
    base = torch.ones(4)
    settings = replace(load_config().train, consistency_weight=1.0, teacher_weight=0.0)
    plain = target_domain_terms(base, first, second, batch, settings)
    expected = base.clone()
    expected[1:3] += consistency_loss(first[1:3], second)
    torch.testing.assert_close(plain, expected)

    taught = target_domain_terms(base, first, second, batch, replace(settings, teacher_weight=0.25))
    expected[1:3] += 0.25 * teacher_loss(first[1:3], teacher[1:3])
    torch.testing.assert_close(taught, expected)
    assert taught[0] == 1.0
    assert taught[3] == 1.0
