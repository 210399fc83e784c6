"""Loading the training configuration (ml/config.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).with_name("config.toml")


def load_config(path: Path = DEFAULT_CONFIG, overrides: dict[str, Any] | None = None) -> dict:
    """The configuration as a dict; ``overrides`` use dotted keys ("train.epochs")."""
    with path.open("rb") as handle:
        config = tomllib.load(handle)
    for dotted, value in (overrides or {}).items():
        section = config
        *parents, leaf = dotted.split(".")
        for name in parents:
            section = section.setdefault(name, {})
        section[leaf] = value
    return config
