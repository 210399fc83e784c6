"""The model card's sentence on how far SDSS and DECaLS validation disagree."""

from ml.model_card import _validation_disagreement


def test_the_gap_between_sdss_and_decals_validation_is_stated():
    metrics = {"val/pooled": {"top1": 0.677, "n": 496}, "val/gz_decals_votes": {"top1": 0.465, "n": 127}}
    [blank, sentence] = _validation_disagreement(metrics, "decals")
    assert blank == ""
    assert "67.7%" in sentence
    assert "46.5%" in sentence
    assert "21.2 points lower" in sentence
    assert "chosen on the GZ DECaLS folds" in sentence


def test_a_decals_score_above_sdss_reads_higher_and_no_rule_is_claimed_when_unknown():
    metrics = {"val/pooled": {"top1": 0.60, "n": 496}, "val/gz_decals_votes": {"top1": 0.66, "n": 127}}
    sentence = _validation_disagreement(metrics, None)[1]
    assert "6.0 points higher" in sentence
    assert "chosen on" not in sentence


def test_nothing_is_said_without_both_sets():
    assert _validation_disagreement({"val/pooled": {"top1": 0.6, "n": 10}}, "decals") == []
