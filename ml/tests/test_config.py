"""ml/config.py: config.toml as typed sections, --set overrides, and stored configurations."""

import json
import tomllib
from pathlib import Path

import pytest

from ml.config import DEFAULT_CONFIG, Config, load_config, parse_override

SHIPPED_MANIFEST = Path(__file__).resolve().parents[1] / "models" / "galaxy10.json"


def test_config_toml_reads_into_sections_and_writes_back_unchanged():
    config = load_config()
    assert config.train.epochs > 0
    assert config.crops.galaxy10 == 0.7
    assert isinstance(config.split.fractions, tuple)
    with DEFAULT_CONFIG.open("rb") as handle:
        assert config.as_dict() == tomllib.load(handle)
    assert Config.from_dict(config.as_dict()) == config


def test_overrides_set_dotted_keys_with_toml_values():
    config = load_config(
        overrides=dict([parse_override("train.epochs=2"), parse_override("labels.read_spiral=false")])
    )
    assert config.train.epochs == 2
    assert config.labels.read_spiral is False
    assert config.with_overrides({"train.epochs": 3}).train.epochs == 3
    assert config.train.epochs == 2  # frozen: a copy changed, not this one


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.epochz": 2}, "unknown configuration key train.epochz"),
        ({"train.epochs": "two"}, "train.epochs: expected int"),
        ({"labels.read_spiral": 1}, "labels.read_spiral: expected bool"),
        ({"train.lr_head": True}, "train.lr_head: expected float"),
        ({"split.fractions": 0.8}, "split.fractions: expected a list"),
    ],
)
def test_unknown_keys_and_wrong_types_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(overrides=overrides)


def test_the_training_seed_defaults_to_the_top_level_seed():
    config = load_config()
    assert config.train.seed is None
    assert config.training_seed == config.seed
    assert "seed" not in config.as_dict()["train"]
    assert config.with_overrides({"train.seed": 7}).training_seed == 7


def test_an_older_models_configuration_reads_with_the_settings_it_predates():
    stored = json.loads(SHIPPED_MANIFEST.read_text())["training"]["config"]
    # As a manifest written before the votes source and the DECaLS selection stored it.
    for key in (
        "gz_decals_votes",
        "votes_soft_weight",
        "votes_full_weight",
        "votes_likelihood_weight",
        "select_on",
    ):
        stored["train"].pop(key, None)
    stored["crops"].pop("gz_decals_votes", None)
    config = Config.from_dict(stored)
    assert config.train.gz_decals_votes is False
    assert config.train.select_on == "sdss_pooled"
    assert config.train.teacher_weight == 0.0
    # Without a crop of its own, the votes source uses the partial cutouts' (the same rendering).
    assert config.crops.gz_decals_votes is None
    assert config.crops.decals_votes == config.crops.gz_decals_partial
    assert Config.of(stored) == config
    assert Config.of(config) is config
