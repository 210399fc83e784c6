"""ml/experiments/ablate.py: every variant sets back a switch that exists, to a value it does not have now."""

import argparse
import json

import numpy as np
import pytest
import torch

from classifier.core.galaxy10 import NUM_CLASSES
from ml.config import DEFAULT_CONFIG, load_config
from ml.dataset import Split, serving_preprocess_config
from ml.experiments import ablate
from ml.experiments.ablate import VARIANTS
from ml.renderings import to_galaxy10_rendering
from ml.scoring import split_logits


@pytest.mark.parametrize("name", sorted(set(VARIANTS) - {"reference"}))
def test_each_variant_changes_an_existing_setting(name):
    _, overrides = VARIANTS[name]
    committed = load_config()
    values = committed.as_dict()
    assert overrides
    for dotted, value in overrides.items():
        section = values
        *parents, leaf = dotted.split(".")
        for part in parents:
            section = section[part]
        # A renamed key would otherwise be added silently and change nothing.
        assert leaf in section, f"{dotted} is not in ml/config.toml"
        assert section[leaf] != value, f"{dotted} is already {value!r}"
        assert load_config(overrides={dotted: value}) != committed


class Recorder(torch.nn.Module):
    """Logits that are the batch's inputs' means, remembering the inputs."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, images):
        self.inputs.append(images)
        return images.mean(dim=(1, 2, 3)).unsqueeze(1).expand(-1, NUM_CLASSES)


def test_split_logits_renders_the_images_before_the_serving_normalisation():
    n = 130  # more than one batch of 128
    pixels = np.full((n, 40, 40, 3), 100, dtype=np.uint8)
    split = Split(source=range(n), pixels=pixels, zoom=0.8)
    pre = serving_preprocess_config(load_config())
    plain, rendered = Recorder(), Recorder()
    split_logits(plain, split, pre)
    logits = split_logits(rendered, split, pre, to_galaxy10_rendering)
    assert logits.shape == (n, NUM_CLASSES)
    before = torch.cat(plain.inputs) * pre.std + pre.mean
    after = torch.cat(rendered.inputs) * pre.std + pre.mean
    # A grey sky 0.06 brighter in [0, 1] pixels, that is 0.06 * 255 grey levels.
    torch.testing.assert_close(after - before, torch.full_like(after, 0.06 * 255), atol=1e-3, rtol=0)


def scores(top1: float, **extra: float) -> dict:
    return {
        "n": 10,
        "top1": top1,
        "balanced_accuracy": 0.5,
        "galaxy10_weighted_accuracy": 0.5,
        "group4": 0.7,
        **extra,
    }


def test_the_table_shows_the_galaxy10_rendering_and_reads_results_from_before_it():
    results = {
        "reference": {"change": "as committed", "val_pooled_v2_labels": scores(0.6, decals_votes_top1=0.7)},
        "rendering": {
            "change": "rendering",
            "val_pooled_v2_labels": scores(
                0.62, decals_votes_top1=0.71, decals_votes_top1_galaxy10_rendering=0.69
            ),
        },
    }
    lines = ablate.table(results).splitlines()
    assert "Galaxy10 rendering" in lines[0]
    assert len({line.count("|") for line in lines}) == 1
    assert lines[2].endswith("| 0.700 |  |")
    assert lines[3].endswith("| 0.710 | 0.690 |")


def test_rescore_rewrites_the_scores_from_the_run_configuration_and_keeps_the_rest(tmp_path, monkeypatch):
    folder = tmp_path / "reference"
    folder.mkdir()
    old = {"change": "as committed", "epochs": 3, "selected_epoch": 2, "val_pooled_v2_labels": scores(0.6)}
    (folder / "ablation.json").write_text(json.dumps(old))
    trained = load_config(overrides={"train.epochs": 3, "image_size": 96})
    (folder / "run.json").write_text(json.dumps({"config": trained.as_dict()}))
    calls = []

    def fake_score(config, labels, weights, data_root):
        calls.append((config, weights))
        return scores(0.6, decals_votes_top1=0.7, decals_votes_top1_galaxy10_rendering=0.65)

    monkeypatch.setattr(ablate, "score", fake_score)
    args = argparse.Namespace(out=tmp_path, config=DEFAULT_CONFIG, data_root=tmp_path, epochs=4, threads=None)
    result = ablate.rescore("reference", args)
    assert calls == [(trained, folder / "best.pt")]
    written = json.loads((folder / "ablation.json").read_text())
    assert written == result
    assert written["val_pooled_v2_labels"]["decals_votes_top1_galaxy10_rendering"] == 0.65
    assert {k: v for k, v in written.items() if k != "val_pooled_v2_labels"} == {
        k: v for k, v in old.items() if k != "val_pooled_v2_labels"
    }
