"""What the model page shows: the manifest's metrics, figures and training record, read into
typed values, and the model card rendered from Markdown to sanitised HTML.

The manifest is written by ml/pipeline.py; every section here is optional, because a
manifest from an older pipeline lacks some of them and the page must still render.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _

from classifier.core.galaxy10 import GALAXY10_CLASSES, NUM_CLASSES, GalaxyClass
from classifier.core.statistics import wilson_interval

MODEL_CARD_FILENAME = "MODEL_CARD.md"
# The manifest's names of the training set's splits, as prefixes of its evaluation set names.
SPLIT_PREFIXES = ("test/", "val/")
# Tags a rendered model card may keep: Markdown's output, minus images (the card links the
# figures by a path relative to ml/models/, and the page draws them from the numbers anyway).
CARD_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol",
    "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
CARD_BASE_HEADING_LEVEL = 3
CARD_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}}
# The confusion matrix's shading steps (site.css .heat-0 .. .heat-10: a brighter blue for more).
HEAT_LEVELS = 10
# The card's sections (ml/model_card.py's "## " headings) whose numbers the page already shows
# in its own tables (metrics, per-class recall, export candidates): shown once, not twice.
CARD_SECTIONS_ON_THE_PAGE = ("Metrics of the shipped TFLite file", "Export check")


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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --- evaluation sets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


@dataclass(frozen=True)
class ReliabilityChart:
    """A reliability diagram as SVG geometry in a 0..100 square (y grows downwards)."""

    bins: list[ReliabilityBin]
    # Coordinates as text: SVG wants "12.5" whatever the reader's locale would make of a float.
    bars: list[dict[str, str]]


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


def _proportion(values: dict[str, Any], key: str, n: int | None) -> Proportion | None:
    value = _number(values.get(key))
    if value is None or n is None or n == 0 or not 0 <= value <= 1:
        return None
    return Proportion.of(value, n)


def _per_class(value: Any) -> list[float | None] | None:
    if not isinstance(value, list) or len(value) != NUM_CLASSES:
        return None
    return [_number(v) for v in value]


def _matrix(value: Any) -> list[list[int]] | None:
    if not (isinstance(value, list) and len(value) == NUM_CLASSES):
        return None
    rows = []
    for row in value:
        if not (isinstance(row, list) and len(row) == NUM_CLASSES):
            return None
        if any(_count(c) is None for c in row):
            return None
        rows.append(list(row))
    return rows


def _svg(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _reliability(value: Any) -> ReliabilityChart | None:
    if not isinstance(value, dict):
        return None
    edges, counts = value.get("edges"), value.get("counts")
    confidence, accuracy = value.get("confidence"), value.get("accuracy")
    if not all(isinstance(v, list) for v in (edges, counts, confidence, accuracy)):
        return None
    size = len(counts)
    if size == 0 or len(edges) != size + 1 or len(confidence) != size or len(accuracy) != size:
        return None
    bins = []
    for i in range(size):
        numbers = [_number(edges[i]), _number(edges[i + 1]), _number(confidence[i]), _number(accuracy[i])]
        count = _count(counts[i])
        if count is None or any(v is None or not 0 <= v <= 1 for v in numbers):
            return None
        low, high, conf, acc = numbers
        bins.append(ReliabilityBin(low=low, high=high, count=count, confidence=conf, accuracy=acc))
    # Empty bins get no bar: their accuracy of 0 is a placeholder, not a measurement.
    bars = [
        {
            "x": _svg(b.low * 100),
            "width": _svg((b.high - b.low) * 100),
            "y": _svg((1 - b.accuracy) * 100),
            "height": _svg(b.accuracy * 100),
            "gap_y": _svg((1 - max(b.accuracy, b.confidence)) * 100),
            "gap_height": _svg(abs(b.accuracy - b.confidence) * 100),
        }
        for b in bins
        if b.count
    ]
    return ReliabilityChart(bins=bins, bars=bars)


def evaluation_sets(metrics: Any) -> list[EvaluationSet]:
    """The manifest's evaluation sets, in its order; entries that are not sets (such as the
    export check) are skipped."""
    if not isinstance(metrics, dict):
        return []
    sets = []
    for key, values in metrics.items():
        if not isinstance(values, dict):
            continue
        n = _count(values.get("n")) or _count(values.get("images"))
        parsed = EvaluationSet(
            key=str(key),
            n=n,
            top1=_proportion(values, "top1", n),
            top2=_proportion(values, "top2", n),
            group4=_proportion(values, "group4", n),
            coarse_accuracy=_number(values.get("coarse_accuracy")),
            macro_f1=_number(values.get("macro_f1")),
            ece=_number(values.get("ece")),
            soft_cross_entropy=_number(values.get("soft_cross_entropy")),
            group_abs_error=_number(values.get("group_abs_error")),
            per_class_recall=_per_class(values.get("per_class_recall")),
            confusion_matrix=_matrix(values.get("confusion_matrix")),
            reliability=_reliability(values.get("reliability")),
        )
        if n is not None:
            sets.append(parsed)
    return sets


def per_class_recall_rows(sets: list[EvaluationSet]) -> list[tuple[GalaxyClass, list[float | None]]]:
    """One row per class, one column per set that measured recall, in the order of the sets."""
    columns = [s for s in sets if s.per_class_recall is not None]
    return [(c, [s.per_class_recall[c.index] for s in columns]) for c in GALAXY10_CLASSES]


def heat_level(count: int, row_total: int) -> int:
    """A cell's share of its row in tenths, for the confusion matrix's shading classes."""
    return round(HEAT_LEVELS * count / row_total) if row_total else 0


def confusion_rows(matrix: list[list[int]]) -> list[dict[str, Any]]:
    rows = []
    for galaxy_class, counts in zip(GALAXY10_CLASSES, matrix, strict=True):
        total = sum(counts)
        rows.append(
            {
                "galaxy_class": galaxy_class,
                "total": total,
                "cells": [
                    {"count": count, "heat": heat_level(count, total), "correct": index == galaxy_class.index}
                    for index, count in enumerate(counts)
                ],
            }
        )
    return rows


@dataclass(frozen=True)
class ExportCandidate:
    name: str
    size_bytes: int | None
    max_abs_diff: float | None
    dev_top1: float | None
    shipped: bool


def export_candidates(metrics: Any, shipped: Any) -> list[ExportCandidate]:
    check = metrics.get("export_check") if isinstance(metrics, dict) else None
    candidates = check.get("candidates") if isinstance(check, dict) else None
    if not isinstance(candidates, dict):
        return []
    return [
        ExportCandidate(
            name=str(name),
            size_bytes=_count(values.get("bytes")),
            max_abs_diff=_number(values.get("max_abs_diff_vs_torch")),
            dev_top1=_number(values.get("dev_top1")),
            shipped=name == shipped,
        )
        for name, values in candidates.items()
        if isinstance(values, dict)
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


def configuration_sections(config: Any) -> list[SettingsSection]:
    """The training configuration (ml/config.toml as it was), one section per TOML table;
    top-level keys form the first, unnamed section and nested tables are flattened with dots."""
    if not isinstance(config, dict):
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


SPLIT_NAMES = ("train", "val", "test")


def data_sources(provenance: Any) -> list[DataSource]:
    if not isinstance(provenance, dict) or not isinstance(provenance.get("sources"), list):
        return []
    splits = provenance.get("splits") if isinstance(provenance.get("splits"), dict) else {}
    sources = []
    for source in provenance["sources"]:
        if not isinstance(source, dict) or "name" not in source:
            continue
        name = str(source["name"])
        sources.append(
            DataSource(
                name=name,
                images=_count(source.get("images")),
                crop_fraction=_number(source.get("crop_fraction")),
                images_sha256=str(source.get("images_sha256", "")),
                splits={
                    split: _count(splits[split].get(name)) if isinstance(splits.get(split), dict) else None
                    for split in SPLIT_NAMES
                },
            )
        )
    return sources


def parse_timestamp(value: Any) -> datetime | None:
    """The manifest's ISO 8601 created_at, if it is one with a time zone."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# --- the model card ----------------------------------------------------------------------------


def render_model_card(text: str) -> str:
    """MODEL_CARD.md as HTML that is safe to embed: ml/model_card.py writes it from training
    output that the site does not control, so the HTML is sanitised after rendering."""
    # Imported here, by the one page that needs them, rather than in every web worker, whose
    # memory budget docs/benchmarks.md tracks.
    import markdown
    import nh3

    # The card sits under the page's "Model card" heading (an h2): its own "#" becomes an h3,
    # so that the page keeps one h1 and a heading order that screen readers can follow.
    html = markdown.markdown(
        text,
        extensions=["tables", "fenced_code", "toc"],
        extension_configs={"toc": {"baselevel": CARD_BASE_HEADING_LEVEL}},
        output_format="html",
    )
    return nh3.clean(
        html,
        tags=CARD_TAGS,
        attributes=CARD_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def without_sections(text: str, headings: Iterable[str]) -> tuple[str, list[str]]:
    """The Markdown without its "## " sections of these headings, and the headings removed."""
    wanted = set(headings)
    kept: list[str] = []
    removed: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            heading = line[3:].strip()
            skipping = heading in wanted
            if skipping:
                removed.append(heading)
        elif line.startswith("# "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept), removed


def read_model_card(model_dir: Path) -> tuple[str, list[str]]:
    """The rendered card beside the model ("" when none was shipped), without the sections
    whose numbers the page shows in its own tables, and the headings of those sections."""
    path = model_dir / MODEL_CARD_FILENAME
    if not path.is_file():
        return "", []
    text, removed = without_sections(path.read_text(encoding="utf-8"), CARD_SECTIONS_ON_THE_PAGE)
    return render_model_card(text), removed


# --- the page ----------------------------------------------------------------------------------


def model_page_context(*, manifest: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    metrics = manifest.get("metrics", {})
    sets = evaluation_sets(metrics)
    training = manifest.get("training") if isinstance(manifest.get("training"), dict) else {}
    preprocessing = manifest.get("preprocessing") if isinstance(manifest.get("preprocessing"), dict) else {}
    provenance = manifest.get("provenance") if isinstance(manifest.get("provenance"), dict) else {}
    history = training.get("history")
    train_seconds = _number(training.get("train_seconds"))
    model_card, card_sections_left_out = read_model_card(model_dir)
    return {
        "created_at": parse_timestamp(manifest.get("created_at")),
        "architecture": manifest.get("architecture") if isinstance(manifest.get("architecture"), str) else "",
        "quantization": manifest.get("quantization") if isinstance(manifest.get("quantization"), str) else "",
        "input_size": _count(preprocessing.get("size")),
        "crop_fraction": _number(preprocessing.get("crop_fraction")),
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
        "export_candidates": export_candidates(metrics, manifest.get("quantization")),
        "data_sources": data_sources(provenance),
        "git_commit": provenance.get("git_commit") if isinstance(provenance.get("git_commit"), str) else "",
        "configuration": configuration_sections(training.get("config")),
        "epochs": len(history) if isinstance(history, list) else None,
        "train_minutes": round(train_seconds / 60) if train_seconds is not None else None,
        "model_card": model_card,
        "card_sections_left_out": card_sections_left_out,
    }
