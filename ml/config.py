"""The training configuration (ml/config.toml) as typed, frozen sections.

``load_config`` reads the TOML file, applies ``--set KEY=VALUE`` overrides (dotted keys,
TOML values) and checks every key and value against the sections below. ``Config.from_dict``
reads a configuration stored in a run's run.json or a model's manifest; ``as_dict`` writes it
back as the nested dict those files hold.

A field's default is the value a configuration written before that setting existed implies,
so an older run or model reads back as it was trained; config.toml sets every field.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).with_name("config.toml")


@dataclass(frozen=True)
class Crops:
    """Centre-crop fraction per source (ml/README.md, "Framing")."""

    galaxy10: float
    gz2_hart: float
    gz2_kaggle: float
    gz1: float
    gz_decals_partial: float
    user: float
    gz_decals_votes: float | None = None

    @property
    def decals_votes(self) -> float:
        """The GZ DECaLS votes' crop: without its own, the partial cutouts' (the same rendering)."""
        return self.gz_decals_partial if self.gz_decals_votes is None else self.gz_decals_votes


@dataclass(frozen=True)
class Labels:
    """How Galaxy Zoo 2 votes become Galaxy10 targets (ml/labels.py)."""

    read_spiral: bool = False


@dataclass(frozen=True)
class DecalsValidationSettings:
    """The GZ DECaLS validation folds (ml/decals_folds.py)."""

    min_votes: int = 20
    folds: int = 5
    validation_folds: tuple[int, ...] = (0, 1)
    seed: int = 20261205


@dataclass(frozen=True)
class SplitSettings:
    fractions: tuple[float, float, float]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr_head: float
    lr_backbone: float
    weight_decay: float
    warmup_fraction: float
    frozen_blocks: int
    gz1_per_epoch: int
    decals_partial_repeats: int
    group_loss_weight: float
    balance_power: float
    num_threads: int
    agreement_power: float = 0.0
    decals_partial: str = "labels"
    consistency_weight: float = 0.0
    target_domain_sources: tuple[str, ...] = ()
    max_steps: int = 0
    gz_decals_votes: bool = False
    gz2_votes: bool = False
    votes_soft_weight: float = 0.0
    votes_full_weight: int = 20
    votes_likelihood_weight: float = 0.0
    select_on: str = "sdss_pooled"
    teacher_weight: float = 0.0
    teacher_file: str = ""
    seed: int | None = None


@dataclass(frozen=True)
class PriorSettings:
    served: str = "training"
    samples: int = 2048


@dataclass(frozen=True)
class CalibrationSettings:
    min_vote_fraction: float


@dataclass(frozen=True)
class AugmentSettings:
    small_rotation_degrees: float
    scale_jitter: float
    translate: float
    resolution_probability: float
    blur_probability: float
    colour_jitter: float
    saturation: tuple[float, float]
    brightness: float
    sky_probability: float
    sky_level: float
    neighbour_probability: float
    max_neighbours: int
    noise_sigma: float
    bridge_target_domain: bool = True
    # The rendering augmentation of DECaLS rows (ml/augment.py); probability 0 leaves it out.
    rendering_probability: float = 0.0
    rendering_saturation: float = 1.8
    rendering_sky: float = 0.06
    rendering_scale: float = 1.35


@dataclass(frozen=True)
class ExportSettings:
    representative_samples: int


@dataclass(frozen=True)
class Config:
    seed: int
    image_size: int
    cache_margin: float
    crops: Crops
    split: SplitSettings
    train: TrainSettings
    calibration: CalibrationSettings
    augment: AugmentSettings
    export: ExportSettings
    labels: Labels = field(default_factory=Labels)
    decals_validation: DecalsValidationSettings = field(default_factory=DecalsValidationSettings)
    prior: PriorSettings = field(default_factory=PriorSettings)

    @property
    def training_seed(self) -> int:
        """Initialisation, batch order and augmentation: ``train.seed``, else the top-level seed.
        The split always follows the top-level seed, so runs of two seeds score the same galaxies."""
        return self.seed if self.train.seed is None else self.train.seed

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """A configuration from its nested dict; unknown keys and wrong types are refused."""
        return _build(cls, data, "")

    @classmethod
    def of(cls, config: Config | Mapping[str, Any]) -> Config:
        """``config`` itself, or the configuration a stored dict describes."""
        return config if isinstance(config, Config) else cls.from_dict(config)

    def as_dict(self) -> dict[str, Any]:
        """The nested dict of config.toml's shape (unset optional values left out)."""
        return _plain(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """A copy with dotted keys ("train.epochs") set to new values."""
        return Config.from_dict(_override(self.as_dict(), overrides))


# What functions read where a configuration may come from config.toml or a stored dict.
ConfigLike = Config | Mapping[str, Any]


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ValueError(f"configuration {prefix.rstrip('.') or 'root'}: expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown configuration key {prefix}{unknown[0]}")
    values = {name: _value(hints[name], data[name], f"{prefix}{name}") for name in names if name in data}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"configuration {prefix.rstrip('.') or 'root'}: {exc}") from None


def _value(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.")
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
    if options:
        if value is None and type(None) in options:
            return None
        hint = next(option for option in options if option is not type(None))
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"configuration {key}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_value(item, v, key) for v in value)
    # A whole number is a float as TOML writes it (15, not 15.0); a bool is never a number here.
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, hint) or (hint is not bool and isinstance(value, bool)):
        raise ValueError(f"configuration {key}: expected {hint.__name__}, got {value!r}")
    return value


def _plain(section: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = _plain(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif value is not None:
            out[f.name] = value
    return out


def _override(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for dotted, value in overrides.items():
        section = config
        *parents, leaf = dotted.split(".")
        for name in parents:
            section = section.setdefault(name, {})
        section[leaf] = value
    return config


def load_config(path: Path = DEFAULT_CONFIG, overrides: Mapping[str, Any] | None = None) -> Config:
    """The configuration of ``path``; ``overrides`` use dotted keys ("train.epochs")."""
    with path.open("rb") as handle:
        return Config.from_dict(_override(tomllib.load(handle), overrides or {}))


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of a ``--set`` option, the value in TOML syntax."""
    key, _, raw = text.partition("=")
    if not key or not raw:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), tomllib.loads(f"value = {raw}")["value"]


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every pipeline entry point shares: configuration and data locations."""
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--galaxy10-h5", type=Path, help="the real Galaxy10_DECals.h5, if you have it")
