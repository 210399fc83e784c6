"""What the model page shows: the typed manifest's metrics, figures and training record in
the page's terms (shares with their Wilson intervals, table rows, settings as text), and the
model card.

Every section of the manifest is optional, because a manifest from an older pipeline lacks
some of them and the page must still render; the manifest schema has checked the ones there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _

from classifier.core.galaxy10 import GALAXY10_CLASSES, GalaxyClass
from classifier.core.manifest import ModelManifest
from classifier.core.manifest_sections import EvaluationMetrics, MetricsSection, ProvenanceSection
from classifier.core.statistics import wilson_interval
from classifier.web.model_card import read_model_card
from classifier.web.model_page_figures import HEAT_LEVELS, ReliabilityChart, confusion_rows, reliability_chart

# The manifest's names of the training set's splits, as prefixes of its evaluation set names.
SPLIT_PREFIXES = ("test/", "val/")
SPLIT_NAMES = ("train", "val", "test")


# --- numbers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proportion:
    """A share of n images, with its 95% Wilson interval."""

    value: float
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, value: float, n: int) -> Proportion:
        low, high = wilson_interval(round(value * n), n)
        return cls(value=value, n=n, low=low, high=high)


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _proportion(value: float | None, n: int) -> Proportion | None:
    return None if value is None or n == 0 else Proportion.of(float(value), n)


# --- evaluation sets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationSet:
    key: str
    n: int | None
    top1: Proportion | None
    top2: Proportion | None
    group4: Proportion | None
    coarse_accuracy: float | None
    macro_f1: float | None
    ece: float | None
    soft_cross_entropy: float | None
    group_abs_error: float | None
    per_class_recall: list[float | None] | None
    confusion_matrix: list[list[int]] | None
    reliability: ReliabilityChart | None

    @property
    def label(self) -> str:
        for prefix in SPLIT_PREFIXES:
            if self.key.startswith(prefix):
                source = self.key.removeprefix(prefix)
                if prefix == "test/":
                    return _("%(source)s, test split") % {"source": source}
                return _("%(source)s, validation split") % {"source": source}
        return self.key


def _evaluation_set(key: str, values: EvaluationMetrics, n: int) -> EvaluationSet:
    recall, matrix = values.per_class_recall, values.confusion_matrix
    return EvaluationSet(
        key=key,
        n=n,
        top1=_proportion(values.top1, n),
        top2=_proportion(values.top2, n),
        group4=_proportion(values.group4, n),
        coarse_accuracy=_float(values.coarse_accuracy),
        macro_f1=_float(values.macro_f1),
        ece=_float(values.ece),
        soft_cross_entropy=_float(values.soft_cross_entropy),
        group_abs_error=_float(values.group_abs_error),
        per_class_recall=None if recall is None else [_float(v) for v in recall],
        confusion_matrix=None if matrix is None else [list(row) for row in matrix],
        reliability=reliability_chart(values.reliability),
    )


def evaluation_sets(metrics: MetricsSection | None) -> list[EvaluationSet]:
    """The manifest's evaluation sets that say how many images they measured, in its order."""
    if metrics is None:
        return []
    return [
        _evaluation_set(key, values, values.size)
        for key, values in metrics.sets.items()
        if values.size is not None
    ]


def per_class_recall_rows(sets: list[EvaluationSet]) -> list[tuple[GalaxyClass, list[float | None]]]:
    """One row per class, one column per set that measured recall, in the order of the sets."""
    columns = [s for s in sets if s.per_class_recall is not None]
    return [(c, [s.per_class_recall[c.index] for s in columns]) for c in GALAXY10_CLASSES]


@dataclass(frozen=True)
class ExportCandidate:
    name: str
    size_bytes: int | None
    max_abs_diff: float | None
    dev_top1: float | None
    shipped: bool


def export_candidates(metrics: MetricsSection | None, shipped: str | None) -> list[ExportCandidate]:
    check = metrics.export_check if metrics is not None else None
    if check is None or check.candidates is None:
        return []
    return [
        ExportCandidate(
            name=name,
            size_bytes=values.bytes,
            max_abs_diff=_float(values.max_abs_diff_vs_torch),
            dev_top1=_float(values.dev_top1),
            shipped=name == shipped,
        )
        for name, values in check.candidates.items()
    ]


# --- training record ---------------------------------------------------------------------------


def format_setting(value: Any) -> str:
    """A configuration value for display. Integers are seeds, sizes and counts, written without
    thousands separators (a seed is an identifier, not a quantity); decimals follow the
    reader's locale."""
    if isinstance(value, bool):
        text = _("yes") if value else _("no")
    elif isinstance(value, float):
        # repr() is the shortest text that reads back as the same float: no invented digits.
        text = repr(value)
        if math.isfinite(value) and "e" not in text:
            text = text.replace(".", formats.get_format("DECIMAL_SEPARATOR"))
    elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        text = "; ".join(format_setting(v) for v in value)
    elif value is None:
        text = "—"
    else:
        text = str(value)
    return text


@dataclass(frozen=True)
class SettingsSection:
    name: str
    rows: list[tuple[str, str]]


def configuration_sections(config: Mapping[str, Any] | None) -> list[SettingsSection]:
    """The training configuration (ml/config.toml as it was), one section per TOML table;
    top-level keys form the first, unnamed section and nested tables are flattened with dots."""
    if not config:
        return []

    def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        for key, value in data.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                rows += flatten(value, f"{name}.")
            else:
                rows.append((name, format_setting(value)))
        return rows

    top = {k: v for k, v in config.items() if not isinstance(v, dict)}
    sections = [SettingsSection(name="", rows=flatten(top))] if top else []
    tables = {k: v for k, v in config.items() if isinstance(v, dict)}
    sections += [SettingsSection(name=str(k), rows=flatten(v)) for k, v in tables.items()]
    return sections


@dataclass(frozen=True)
class DataSource:
    name: str
    images: int | None
    crop_fraction: float | None
    images_sha256: str
    splits: dict[str, int | None]


def data_sources(provenance: ProvenanceSection | None) -> list[DataSource]:
    if provenance is None or provenance.sources is None:
        return []
    splits = provenance.splits or {}
    return [
        DataSource(
            name=source.name,
            images=source.images,
            crop_fraction=_float(source.crop_fraction),
            images_sha256=source.images_sha256 or "",
            splits={
                split: splits[split].get(source.name) if split in splits else None for split in SPLIT_NAMES
            },
        )
        for source in provenance.sources
    ]


def parse_timestamp(value: str | None) -> datetime | None:
    """The manifest's ISO 8601 created_at, if it is one with a time zone."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# --- the page ----------------------------------------------------------------------------------


def model_page_context(*, manifest: ModelManifest, model_dir: Path) -> dict[str, Any]:
    """The page's context from the served model's manifest and the folder it was shipped in."""
    sets = evaluation_sets(manifest.metrics)
    training, provenance = manifest.training, manifest.provenance
    history = training.history if training is not None else None
    train_seconds = training.train_seconds if training is not None else None
    model_card, card_sections_left_out = read_model_card(model_dir)
    return {
        "created_at": parse_timestamp(manifest.created_at),
        "architecture": manifest.architecture or "",
        "quantization": manifest.quantization or "",
        "input_size": manifest.preprocessing.size,
        "crop_fraction": _float(manifest.preprocessing.crop_fraction),
        "evaluation_sets": sets,
        "main_set": next((s for s in sets if s.top1 is not None), None),
        "recall_sets": [s for s in sets if s.per_class_recall is not None],
        "per_class_recall": per_class_recall_rows(sets),
        "confusion_matrices": [
            {"set": s, "rows": confusion_rows(s.confusion_matrix)}
            for s in sets
            if s.confusion_matrix is not None
        ],
        "reliability_sets": [s for s in sets if s.reliability is not None],
        "heat_levels": range(HEAT_LEVELS + 1),
        "export_candidates": export_candidates(manifest.metrics, manifest.quantization),
        "data_sources": data_sources(provenance),
        "git_commit": (provenance.git_commit if provenance is not None else None) or "",
        "configuration": configuration_sections(training.config if training is not None else None),
        "epochs": len(history) if history is not None else None,
        "train_minutes": round(train_seconds / 60) if train_seconds is not None else None,
        "model_card": model_card,
        "card_sections_left_out": card_sections_left_out,
    }
