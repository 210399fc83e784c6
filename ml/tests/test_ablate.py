"""ml/experiments/ablate.py: every variant sets back a switch that exists, to a value it does not have now."""

import pytest

from ml.config import load_config
from ml.experiments.ablate import VARIANTS


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
