"""Loading the training configuration (ml/config.toml)."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).with_name("config.toml")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every pipeline entry point shares: configuration and data locations."""
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--galaxy10-h5", type=Path, help="the real Galaxy10_DECals.h5, if you have it")


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


def parse_override(text: str) -> tuple[str, Any]:
    key, _, raw = text.partition("=")
    if not key or not raw:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), tomllib.loads(f"value = {raw}")["value"]
