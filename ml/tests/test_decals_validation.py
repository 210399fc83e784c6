"""The GZ DECaLS validation set: vote table, vote -> Galaxy10 rule, folds and scores."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier.core.galaxy10 import NUM_CLASSES
from ml import decals_folds as folds
from ml import decals_validation as dv
from ml import votes
from ml.config import load_config
from ml.dataset import serving_preprocess_config
from ml.decals_models import LoadedModel
from ml.renderings import to_galaxy10_rendering


def counts_row(**answers: int) -> np.ndarray:
    """One row of answer counts from keywords like smooth_or_featured__smooth=30."""
    row = np.zeros(votes.NUM_ANSWERS, dtype=np.int64)
    for key, value in answers.items():
        question, answer = key.split("__")
        column = f"{question.replace('_', '-')}_{answer.replace('_', '-')}"
        row[votes.ANSWER_COLUMNS.index(column)] = value
    return row


def as_fractions(counts: np.ndarray, *, even: bool = True) -> np.ndarray:
    """Counts (N, NUM_ANSWERS) as a model predicts them: every question's answers summing to 1. A
    question nobody answered is split evenly (a model hedges on branches it does not reach), or
    with ``even=False`` left at zero, the exact proportions of the counts."""
    counts = np.atleast_2d(counts).astype(np.float64)
    fractions = np.zeros_like(counts)
    for part in votes.ANSWER_SLICES.values():
        total = counts[:, part].sum(axis=1, keepdims=True)
        empty = np.full_like(counts[:, part], 1.0 / (part.stop - part.start) if even else 0.0)
        fractions[:, part] = np.where(total > 0, counts[:, part] / np.where(total > 0, total, 1.0), empty)
    return fractions


def write_table(path: Path, rows: list[tuple[str, np.ndarray, int]]) -> Path:
    """A labels.csv in the gz_decals_votes schema: (iauname, counts, galaxy10_label) per row."""
    totals = [f"{q}_total-votes" for q in votes.QUESTIONS]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "iauname", *totals, *votes.ANSWER_COLUMNS, "galaxy10_label"])
        for name, counts, label in rows:
            sums = [int(counts[part].sum()) for part in votes.ANSWER_SLICES.values()]
            writer.writerow([f"images/{name}.jpg", name, *sums, *counts.tolist(), label])
    return path


def generated_table(n: int, seed: int) -> votes.VoteTable:
    rng = np.random.default_rng(seed)
    counts = np.zeros((n, votes.NUM_ANSWERS), dtype=np.int64)
    for part in votes.ANSWER_SLICES.values():
        width = part.stop - part.start
        counts[:, part] = rng.multinomial(1, np.ones(width) / width, size=n) * rng.integers(
            0, 45, size=(n, 1)
        )
    names = [f"J{i:06d}" for i in rng.permutation(n)]
    return votes.VoteTable([f"images/{x}.jpg" for x in names], names, counts, np.full(n, -1))


# ---- the vote -> Galaxy10 rule on hand-written rows ------------------------------------------


# Vote rows whose answers name one branch of the tree, and the Galaxy10 class of that branch
# (also read by ml/tests/test_tree_classes.py, for the tree on predicted fractions).
BRANCH_EXAMPLES: list[tuple[dict[str, int], int]] = [
    ({"smooth_or_featured__smooth": 30, "how_rounded__round": 28, "merging__none": 30}, 2),
    ({"smooth_or_featured__smooth": 30, "how_rounded__in_between": 25, "merging__none": 30}, 3),
    ({"smooth_or_featured__smooth": 30, "how_rounded__cigar_shaped": 25, "merging__none": 30}, 4),
    ({"smooth_or_featured__smooth": 5, "merging__merger": 30, "merging__none": 2}, 1),
    (
        {
            "smooth_or_featured__featured_or_disk": 30,
            "merging__major_disturbance": 25,
            "merging__none": 5,
        },
        0,
    ),
    (
        {
            "smooth_or_featured__featured_or_disk": 30,
            "disk_edge_on__yes": 28,
            "edge_on_bulge__none": 25,
            "merging__none": 30,
        },
        8,
    ),
    (
        {
            "smooth_or_featured__featured_or_disk": 30,
            "disk_edge_on__yes": 28,
            "edge_on_bulge__boxy": 10,
            "edge_on_bulge__rounded": 15,
            "merging__none": 30,
        },
        9,
    ),
    (
        {
            "smooth_or_featured__featured_or_disk": 30,
            "disk_edge_on__no": 30,
            "bar__strong": 12,
            "bar__weak": 10,
            "bar__no": 8,
            "has_spiral_arms__yes": 30,
            "merging__none": 30,
        },
        5,
    ),
    (
        {
            "smooth_or_featured__featured_or_disk": 30,
            "disk_edge_on__no": 30,
            "bar__no": 30,
            "has_spiral_arms__yes": 30,
            "spiral_winding__tight": 25,
            "merging__none": 30,
        },
        6,
    ),
    (
        {
            "smooth_or_featured__featured_or_disk": 30,
            "disk_edge_on__no": 30,
            "bar__no": 30,
            "has_spiral_arms__yes": 30,
            "spiral_winding__medium": 15,
            "spiral_winding__loose": 10,
            "merging__none": 30,
        },
        7,
    ),
]


@pytest.mark.parametrize(("answers", "expected"), BRANCH_EXAMPLES)
def test_votes_imply_the_galaxy10_class_of_their_branch(answers, expected):
    soft, coverage = votes.vote_targets(counts_row(**answers)[None])
    assert soft.argmax() == expected
    assert coverage[0] > 0.5


def test_a_minor_disturbance_keeps_a_spiral_a_spiral():
    spiral = {
        "smooth_or_featured__featured_or_disk": 30,
        "disk_edge_on__no": 30,
        "bar__no": 30,
        "has_spiral_arms__yes": 30,
        "spiral_winding__tight": 30,
    }
    soft, _ = votes.vote_targets(counts_row(**spiral, merging__minor_disturbance=25, merging__none=5)[None])
    assert soft.argmax() == 6
    assert soft[0, 0] == 0  # minor disturbance alone is not Galaxy10's Disturbed


def test_armless_face_on_disks_have_no_galaxy10_class():
    lenticular = counts_row(
        smooth_or_featured__featured_or_disk=30,
        disk_edge_on__no=30,
        bar__no=30,
        has_spiral_arms__no=30,
        merging__none=30,
    )
    _, coverage = votes.vote_targets(lenticular[None])
    assert coverage[0] == pytest.approx(0.0)


def test_smooth_fraction_drops_artifact_votes_and_is_undefined_without_votes():
    rows = np.stack(
        [
            counts_row(
                smooth_or_featured__smooth=6,
                smooth_or_featured__featured_or_disk=2,
                smooth_or_featured__artifact=10,
            ),
            counts_row(),
        ]
    )
    fraction = votes.smooth_fraction(rows)
    assert fraction[0] == pytest.approx(0.75)
    assert np.isnan(fraction[1])


def test_read_vote_table_reads_counts_and_refuses_answers_above_the_total(tmp_path):
    row = counts_row(smooth_or_featured__smooth=3, merging__none=2)
    table = votes.read_vote_table(write_table(tmp_path / "labels.csv", [("J1", row, 2)]))
    np.testing.assert_array_equal(table.counts[0], row)
    assert table.galaxy10_label.tolist() == [2]
    text = (tmp_path / "labels.csv").read_text().splitlines()
    header = text[0].split(",")
    cells = text[1].split(",")
    cells[header.index("smooth-or-featured_total-votes")] = "1"
    (tmp_path / "labels.csv").write_text("\n".join([text[0], ",".join(cells)]) + "\n")
    with pytest.raises(ValueError, match="smooth-or-featured answers add up to more"):
        votes.read_vote_table(tmp_path / "labels.csv")


# ---- folds ------------------------------------------------------------------------------------


def test_folds_are_deterministic_disjoint_and_independent_of_row_order():
    table = generated_table(400, seed=1)
    config = load_config()
    first = folds.build(table, config)
    again = folds.build(table, config)
    np.testing.assert_array_equal(first.fold, again.fold)
    eligible = table.total("smooth-or-featured") >= 20
    assert (first.fold[eligible] >= 0).all()
    assert (first.fold[~eligible] == -1).all()
    sizes = np.bincount(first.fold[eligible])
    assert len(sizes) == 5
    assert sizes.max() - sizes.min() <= 1
    # Shuffle the rows: every galaxy keeps its fold, so no galaxy can be in two folds.
    order = np.random.default_rng(7).permutation(len(table))
    shuffled = votes.VoteTable(
        [table.files[i] for i in order],
        [table.iaunames[i] for i in order],
        table.counts[order],
        table.galaxy10_label[order],
    )
    moved = folds.build(shuffled, config)
    by_name = dict(zip(table.iaunames, first.fold, strict=True))
    assert all(by_name[name] == fold for name, fold in zip(shuffled.iaunames, moved.fold, strict=True))
    # Another seed deals differently.
    reseeded = folds.build(table, config.with_overrides({"decals_validation.seed": 5}))
    assert (reseeded.fold != first.fold).any()


def test_validation_folds_and_members_are_held_out():
    table = generated_table(200, seed=2)
    table.galaxy10_label[:3] = 1
    validation = folds.build(table, load_config())
    assert validation.held_out[:3].all()
    assert set(np.unique(validation.fold[validation.validation])) == {0, 1}
    assert not validation.held_out[validation.fold >= 2][~validation.member[validation.fold >= 2]].any()


# ---- scores -----------------------------------------------------------------------------------


def test_smooth_mae_compares_summed_smooth_probability_with_the_volunteers():
    counts = np.stack(
        [
            counts_row(smooth_or_featured__smooth=30, smooth_or_featured__featured_or_disk=10),  # 0.75
            counts_row(smooth_or_featured__smooth=0, smooth_or_featured__featured_or_disk=20),  # 0.0
            counts_row(),  # no smooth-or-featured votes: left out
        ]
    )
    probs = np.zeros((3, NUM_CLASSES))
    probs[0, [2, 3, 4, 6]] = [0.25, 0.25, 0.0, 0.5]  # smooth 0.5 -> error 0.25
    probs[1, [3, 7]] = [0.1, 0.9]  # smooth 0.1 -> error 0.1
    probs[2, 2] = 1.0
    result = dv.smooth_mae(probs, counts)
    assert result["n"] == 2
    assert result["value"] == pytest.approx(0.175)


def test_fold_scores_count_only_galaxies_galaxy10_covers():
    soft = np.eye(NUM_CLASSES)[[2, 6, 8]]
    coverage = np.array([1.0, 0.9, 0.2])
    probs = np.eye(NUM_CLASSES)[[2, 5, 8]] * 0.9 + 0.01
    scores = dv.fold_scores(probs, soft, coverage, np.zeros((3, votes.NUM_ANSWERS), np.int64))
    assert scores["top1"]["n"] == 2
    assert scores["top1"]["value"] == pytest.approx(0.5)
    assert scores["group4"]["value"] == pytest.approx(1.0)  # barred for tight: same face-on group


def test_paired_difference_interval_contains_the_difference():
    a = np.array([1, 0, 1, 1, 0, 1, 0, 1] * 10)
    b = np.array([1, 1, 1, 1, 0, 1, 1, 1] * 10)
    result = dv.paired_difference(a, b)
    assert result["difference"] == pytest.approx(0.25)
    low, high = result["interval95"]
    assert low < 0.25 < high
    assert low > 0


# ---- the real data (skips without ../shared/data) ----------------------------------------------


def test_real_vote_rule_agrees_with_the_exact_galaxy10_members(data_root):
    if not (data_root / folds.VOTES_DIR).is_dir():
        pytest.skip(f"{data_root / folds.VOTES_DIR} not present")
    validation = folds.load(data_root, load_config())
    rule = dv.vote_rule_agreement(validation)
    assert rule["n"] == 63
    assert rule["agree"] >= 58  # measured 60 of 63
    assert int(validation.validation.sum()) == 128
    assert not (validation.held_out & ~validation.validation & ~validation.member).any()
    images, _label = dv.read_members(data_root)
    assert len(images) == 69
    assert all(Path(p).exists() for p in images)


def test_vote_head_scores_read_the_smooth_fraction_from_the_dirichlet_mean():
    counts = np.stack([counts_row(smooth_or_featured__smooth=30, smooth_or_featured__featured_or_disk=10)])
    outputs = np.full((1, votes.NUM_ANSWERS), -20.0, np.float32)  # every alpha about 1
    part = votes.ANSWER_SLICES["smooth-or-featured"]
    outputs[0, part.start] = 20.0  # smooth alpha 100, featured 1: predicted smooth 100/101
    scores = dv.vote_head_scores(outputs, counts)
    assert scores["smooth_mae"]["value"] == pytest.approx(abs(100 / 101 - 0.75), abs=1e-4)
    assert scores["vote_nll"]["value"] > 0


def test_a_run_still_training_is_scored_from_best_pt_with_the_configuration_it_started_with(tmp_path):
    import torch

    from ml.model import build_model
    from ml.vote_loss import VoteHead

    config = load_config(overrides={"train.gz_decals_votes": True})
    model = build_model(config.image_size, pretrained=False)
    torch.save(model.state_dict(), tmp_path / "best.pt")
    torch.save(VoteHead(model._fc.in_features).state_dict(), tmp_path / "vote_head.pt")
    loaded = dv.load_model(tmp_path, config)
    inputs = np.zeros((2, config.image_size, config.image_size, 3), np.float32)
    probs = loaded.predict(inputs)
    assert probs.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert loaded.predict_votes(inputs).shape == (2, votes.NUM_ANSWERS)
    fractions = loaded.predict_fractions(inputs)
    for part in votes.ANSWER_SLICES.values():
        np.testing.assert_allclose(fractions[:, part].sum(axis=1), 1.0, rtol=1e-5)
    assert loaded.config.train.gz_decals_votes is True
    with pytest.raises(FileNotFoundError):
        dv.load_model(tmp_path)  # without the configuration it is not a model folder


def test_fraction_errors_score_each_answer_where_enough_volunteers_answered():
    counts = np.stack(
        [
            counts_row(smooth_or_featured__smooth=30, smooth_or_featured__featured_or_disk=10, bar__no=20),
            counts_row(smooth_or_featured__smooth=5, smooth_or_featured__featured_or_disk=15, bar__strong=4),
        ]
    )
    predicted = np.zeros((2, votes.NUM_ANSWERS))
    for part in votes.ANSWER_SLICES.values():
        predicted[:, part] = 1.0 / (part.stop - part.start)
    sof = votes.ANSWER_SLICES["smooth-or-featured"]
    predicted[:, sof] = [0.5, 0.5, 0.0]
    errors = votes.fraction_errors(predicted, counts, min_votes=20)
    smooth = errors["smooth-or-featured"]
    assert smooth["n"] == 2
    assert smooth["answers"]["smooth"] == pytest.approx((abs(0.5 - 0.75) + abs(0.5 - 0.25)) / 2)
    assert smooth["answers"]["artifact"] == 0.0
    assert smooth["mae"] == pytest.approx(np.mean(list(smooth["answers"].values())))
    # The second galaxy's 4 bar votes are too few to score: the first galaxy's 20 alone count.
    assert errors["bar"]["n"] == 1
    assert errors["bar"]["answers"]["no"] == pytest.approx(2 / 3)
    assert "merging" not in errors  # nobody answered it


# ---- renderings --------------------------------------------------------------------------------


def test_galaxy10_rendering_re_renders_the_inputs_before_the_serving_normalisation(tmp_path):
    paths = []
    for index, colour in enumerate([(100, 100, 100), (160, 110, 80)]):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.new("RGB", (64, 64), colour).save(paths[-1])
    config = load_config()
    pre = serving_preprocess_config(config)
    soft = np.eye(NUM_CLASSES)[[2, 3]]
    plain = dv._inputs("gz_decals_votes", paths, soft, config)
    rendered = dv._inputs("gz_decals_votes", paths, soft, config, "galaxy10")
    assert rendered.shape == plain.shape
    assert rendered.dtype == plain.dtype
    pixels = plain * pre.std + pre.mean
    new_pixels = rendered * pre.std + pre.mean
    # The grey image: 0.06 brighter in [0, 1], that is about 15 grey levels.
    np.testing.assert_allclose(new_pixels[0] - pixels[0], 0.06 * 255, atol=1e-3)
    expected = to_galaxy10_rendering(pixels / 255.0, channel_axis=-1) * 255
    np.testing.assert_allclose(new_pixels, expected, atol=1e-3)


def test_the_table_says_when_the_galaxy10_rendering_was_scored():
    rate = {"n": 10, "value": 0.5, "interval95": [0.2, 0.8]}
    mae = {"n": 10, "value": 0.1, "interval95": [0.05, 0.15]}
    fold = {"top1": rate, "group4": rate, "smooth_mae": mae}
    members = {"top1": rate, "group4": rate}
    results = [
        {"model": "m", "rendering": rendering, "validation folds": fold, "members": members}
        for rendering in dv.RENDERINGS
    ]
    lines = dv.table(results).splitlines()
    assert "| m | validation folds |" in lines[2]
    assert "| m | validation folds, Galaxy10 rendering |" in lines[3]


# ---- Galaxy10 classes through the decision tree ------------------------------------------------


def test_a_model_with_vote_fractions_is_also_scored_through_the_tree_and_as_a_blend(monkeypatch):
    config = load_config()
    table = generated_table(200, seed=3)
    validation = folds.build(table, config)
    implied = validation.soft.argmax(axis=1)
    members = np.arange(12)
    # The "images" are the volunteers' own fractions, so the tree must find every implied class.
    monkeypatch.setattr(dv, "model_inputs", lambda _root, v, rows, *_: as_fractions(v.table.counts[rows]))
    monkeypatch.setattr(
        dv, "member_inputs", lambda *_: (as_fractions(table.counts[members]), implied[members])
    )
    round_smooth = np.eye(NUM_CLASSES)[2] * 0.9 + 0.01  # a head that always answers Round Smooth
    model = LoadedModel(
        "m",
        lambda inputs: np.tile(round_smooth, (len(inputs), 1)),
        config,
        None,
        predict_fractions=lambda inputs: inputs,
    )
    results = dv.score_model(model, Path("unused"), validation, read_spiral=config.labels.read_spiral)
    head, tree, blend = results["validation folds"], results["tree"], results["blend"]
    covered = validation.validation & (validation.coverage >= dv.MIN_COVERAGE)
    head_top1 = float(np.mean(implied[covered] == 2))
    assert head["top1"]["value"] == pytest.approx(head_top1)
    assert tree["model"] == "m [tree]"
    assert tree["validation folds"]["top1"]["n"] == head["top1"]["n"] == int(covered.sum())
    assert tree["validation folds"]["top1"]["value"] == pytest.approx(1.0)
    assert tree["validation folds"]["top1_minus_head"]["difference"] == pytest.approx(1.0 - head_top1)
    assert tree["validation folds"]["tree_coverage"]["n"] == int(validation.validation.sum())
    assert tree["members"]["top1"]["value"] == pytest.approx(1.0)
    assert results["members"]["top1"]["value"] == pytest.approx(np.mean(implied[members] == 2))
    # Where the head is right (class 2), the tree agrees, so the blend is right there too.
    assert head_top1 <= blend["validation folds"]["top1"]["value"] <= 1.0
    rows = dv.table([results]).splitlines()
    assert [row.split(" | ")[0] for row in rows[2:]] == ["| m", "| m [tree]", "| m [blend]"]


def test_a_model_without_vote_fractions_has_no_tree_rows(monkeypatch):
    config = load_config()
    validation = folds.build(generated_table(100, seed=4), config)
    monkeypatch.setattr(dv, "model_inputs", lambda _root, _v, rows, *_: np.zeros((len(rows), 1)))
    monkeypatch.setattr(dv, "member_inputs", lambda *_: (np.zeros((3, 1)), np.array([2, 6, 8])))
    model = LoadedModel("m", lambda inputs: np.full((len(inputs), NUM_CLASSES), 0.1), config, None)
    results = dv.score_model(model, Path("unused"), validation)
    assert "tree" not in results
    assert "blend" not in results
    assert len(dv.table([results]).splitlines()) == 3
