"""GZ2 (Hart et al. 2016) votes as GZ DECaLS answer counts for the vote head (ml.votes.hart_counts),
and the ``train.gz2_votes`` switch that hands them to the gz2_hart source."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml import sources, votes
from ml.config import Config, load_config
from ml.dataset import batch_tensors, collect_sources, prepare_splits, vote_soft_weight
from ml.vote_loss import concentrations, dirichlet_multinomial_log_likelihood, vote_nll

# Every GZ2 task's answers as the Hart table names them.
HART_ANSWERS = {
    "t01_smooth_or_features": ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact"),
    "t02_edgeon": ("a04_yes", "a05_no"),
    "t03_bar": ("a06_bar", "a07_no_bar"),
    "t04_spiral": ("a08_spiral", "a09_no_spiral"),
    "t05_bulge_prominence": ("a10_no_bulge", "a11_just_noticeable", "a12_obvious", "a13_dominant"),
    "t06_odd": ("a14_yes", "a15_no"),
    "t07_rounded": ("a16_completely_round", "a17_in_between", "a18_cigar_shaped"),
    "t08_odd_feature": (
        "a19_ring",
        "a20_lens_or_arc",
        "a21_disturbed",
        "a22_irregular",
        "a23_other",
        "a24_merger",
        "a38_dust_lane",
    ),
    "t09_bulge_shape": ("a25_rounded", "a26_boxy", "a27_no_bulge"),
    "t10_arms_winding": ("a28_tight", "a29_medium", "a30_loose"),
    "t11_arms_number": ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell"),
}
# As in the shared SDSS table: raw fractions for these two answers only.
RAW = ("t01_smooth_or_features_a01_smooth", "t01_smooth_or_features_a02_features_or_disk")


def hart_row(file: str, total: int, fractions: dict[str, tuple[float, ...]], debiased=None) -> dict[str, str]:
    """One Hart-schema row; ``fractions`` per task (raw where the table has them, else weighted),
    every task left out at zero; ``debiased`` (default: the same) deliberately differs in tests."""
    row = {"file": file, "gz2_class": "E", "total_classifications": str(total), "total_votes": "0"}
    for task, answers in HART_ANSWERS.items():
        given = fractions.get(task, (0.0,) * len(answers))
        other = (debiased or {}).get(task, given)
        for answer, f, d in zip(answers, given, other, strict=True):
            name = f"{task}_{answer}"
            if name in RAW:
                row[f"{name}_fraction"] = str(f)
            row[f"{name}_weighted_fraction"] = str(f)
            row[f"{name}_debiased"] = str(d)
    return row


SPIRAL = hart_row(
    "spiral.jpg",
    40,
    {
        # artifact: no raw column, so the remainder 0.05 of the raw t01 fractions
        "t01_smooth_or_features": (0.25, 0.70, 0.0),
        "t02_edgeon": (0.25, 0.75),
        "t03_bar": (0.4, 0.6),  # not shared: stays zero
        "t04_spiral": (0.6, 0.4),
        "t05_bulge_prominence": (0.1, 0.2, 0.3, 0.4),
        "t06_odd": (0.5, 0.5),
        "t07_rounded": (0.5, 0.3, 0.2),
        "t08_odd_feature": (0, 0, 0.5, 0, 0, 0.5, 0),
        "t09_bulge_shape": (0.2, 0.3, 0.5),
        "t10_arms_winding": (0.5, 0.25, 0.25),
        "t11_arms_number": (0.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    },
    debiased={"t07_rounded": (0.0, 0.0, 1.0)},
)
SMOOTH = hart_row(
    "smooth.jpg", 30, {"t01_smooth_or_features": (1.0, 0.0, 0.0), "t07_rounded": (1.0, 0.0, 0.0)}
)

EXPECTED = {
    # 40 x (0.25, 0.70, 0.05)
    "smooth-or-featured": ([10, 28, 2], [30, 0, 0]),
    # 28 featured x (0.25, 0.75)
    "disk-edge-on": ([7, 21], [0, 0]),
    # 21 face-on x (0.6, 0.4) = 12.6, 8.4: the one vote left goes to the larger remainder
    "has-spiral-arms": ([13, 8], [0, 0]),
    # 10 smooth x (0.5, 0.3, 0.2), the weighted fractions, not the debiased
    "how-rounded": ([5, 3, 2], [30, 0, 0]),
    # 7 edge-on x (boxy 0.3, none 0.5, rounded 0.2) = 2.1, 3.5, 1.4 in DECaLS order
    "edge-on-bulge": ([2, 4, 1], [0, 0, 0]),
    # 13 spiral x (0.5, 0.25, 0.25) = 6.5, 3.25, 3.25
    "spiral-winding": ([7, 3, 3], [0, 0, 0]),
    "spiral-arm-count": ([0, 13, 0, 0, 0, 0], [0] * 6),
    "bar": ([0, 0, 0], [0, 0, 0]),
    "bulge-size": ([0] * 5, [0] * 5),
    "merging": ([0] * 4, [0] * 4),
}


def write_hart(root: Path, rows: list[dict[str, str]], images: bool = False) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    with (root / "votes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if images:
        rng = np.random.default_rng(0)
        for row in rows:
            pixels = rng.integers(0, 255, size=(24, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "images" / row["file"])
    return root


def test_counts_of_the_shared_questions_follow_the_tree():
    counts = votes.hart_counts([SPIRAL, SMOOTH])
    assert counts.shape == (2, votes.NUM_ANSWERS)
    for question, (spiral, smooth) in EXPECTED.items():
        part = votes.ANSWER_SLICES[question]
        assert counts[0, part].tolist() == spiral, question
        assert counts[1, part].tolist() == smooth, question
    assert set(EXPECTED) == set(votes.QUESTIONS)


def test_count_columns_are_used_where_the_table_has_them():
    row = dict(SPIRAL)
    for answer, n in zip(HART_ANSWERS["t01_smooth_or_features"], (11, 26, 3), strict=True):
        row[f"t01_smooth_or_features_{answer}_count"] = str(n)
    counts = votes.hart_counts([row])
    assert counts[0, votes.ANSWER_SLICES["smooth-or-featured"]].tolist() == [11, 26, 3]
    # and the later questions are reached by those counts: 26 featured x (0.25, 0.75) = 6.5, 19.5
    assert counts[0, votes.ANSWER_SLICES["disk-edge-on"]].sum() == 26


def test_unshared_questions_teach_nothing_through_the_likelihood():
    counts = torch.from_numpy(votes.hart_counts([SPIRAL]).astype(np.float32))
    outputs = torch.randn(1, votes.NUM_ANSWERS, dtype=torch.float32, requires_grad=True)
    loss = vote_nll(outputs, counts)
    alpha = concentrations(outputs)
    shared = [q for q in votes.QUESTIONS if q not in ("bar", "bulge-size", "merging")]
    expected = -sum(
        dirichlet_multinomial_log_likelihood(
            counts[:, votes.ANSWER_SLICES[q]], alpha[:, votes.ANSWER_SLICES[q]]
        )
        for q in shared
    )
    assert torch.allclose(loss, expected)
    loss.sum().backward()
    for question in ("bar", "bulge-size", "merging"):
        assert outputs.grad[0, votes.ANSWER_SLICES[question]].abs().sum() == 0, question
    assert outputs.grad[0, votes.ANSWER_SLICES["spiral-winding"]].abs().sum() > 0


def test_the_switch_is_off_by_default_and_in_the_committed_configuration():
    assert load_config().train.gz2_votes is False
    without = load_config().as_dict()
    del without["train"]["gz2_votes"]
    assert Config.from_dict(without).train.gz2_votes is False


@pytest.mark.parametrize("switch", [False, True])
def test_the_switch_gives_the_gz2_source_its_counts(tmp_path, switch):
    write_hart(tmp_path / "gz2_votes_sdss", [SPIRAL, SMOOTH])
    config = load_config(overrides={"train.gz2_votes": switch})
    (source,) = collect_sources(config, tmp_path)
    assert source.name == "gz2_hart"
    if switch:
        assert source.votes.shape == (2, votes.NUM_ANSWERS)
        np.testing.assert_array_equal(source.votes, votes.hart_counts([SPIRAL, SMOOTH]))
    else:
        assert source.votes is None
    # The 10-class targets come from the debiased fractions either way.
    plain = sources.load_gz2_hart(tmp_path / "gz2_votes_sdss", 0.6, read_spiral=True)
    np.testing.assert_array_equal(source.soft, plain.soft)


def test_training_batches_carry_the_gz2_counts_and_keep_their_soft_weight(tmp_path, monkeypatch):
    monkeypatch.setattr("ml.cache.CACHE_DIR", tmp_path / "cache")
    rows = [dict(SPIRAL, file=f"s{i}.jpg") for i in range(6)] + [
        dict(SMOOTH, file=f"e{i}.jpg") for i in range(6)
    ]
    write_hart(tmp_path / "gz2_votes_sdss", rows, images=True)
    # votes_soft_weight scales the GZ DECaLS vote-implied targets only: at 0 GZ2's own targets
    # (from its debiased fractions) must still weigh what they did.
    config = load_config(overrides={"train.gz2_votes": True, "train.votes_soft_weight": 0.0})
    (source,) = collect_sources(config, tmp_path)
    train = prepare_splits([source], config)["train"]
    kept = source.subset(sources.split_indices(source, config)["train"])
    assert (kept.soft_weight > 0).any()
    np.testing.assert_array_equal(train[0].source.soft_weight, kept.soft_weight)
    batch = batch_tensors(train, [(0, 0), (0, 1)])
    np.testing.assert_array_equal(batch["votes"].numpy(), kept.votes[:2])


def test_real_gz2_counts_are_consistent_and_keep_the_soft_weights(data_root):
    rows = list(csv.DictReader((data_root / "gz2_votes_sdss" / "votes.csv").open(newline="")))
    counts = votes.hart_counts(rows)
    first = counts[:, votes.ANSWER_SLICES["smooth-or-featured"]].sum(axis=1)
    np.testing.assert_array_equal(first, [round(float(r["total_classifications"])) for r in rows])
    # With the committed settings no GZ2 galaxy's 10-class target changes weight when the switch is on.
    assert (vote_soft_weight(counts, load_config().train) == 1.0).all()
    for question in ("bar", "bulge-size", "merging"):
        assert counts[:, votes.ANSWER_SLICES[question]].sum() == 0
    assert (counts >= 0).all()
