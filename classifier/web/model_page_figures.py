"""The model page's figures drawn from the manifest's numbers: the reliability diagram as SVG
geometry and the confusion matrix as a shaded table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from classifier.core.galaxy10 import GALAXY10_CLASSES
from classifier.core.manifest_sections import Reliability

# The confusion matrix's shading steps (site.css .heat-0 .. .heat-10: a brighter blue for more).
HEAT_LEVELS = 10


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


def _svg(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def reliability_chart(reliability: Reliability | None) -> ReliabilityChart | None:
    """The diagram of the manifest's bins (checked by the manifest schema); None without bins."""
    if reliability is None or not reliability.counts:
        return None
    bins = [
        ReliabilityBin(
            low=float(reliability.edges[i]),
            high=float(reliability.edges[i + 1]),
            count=count,
            confidence=float(reliability.confidence[i]),
            accuracy=float(reliability.accuracy[i]),
        )
        for i, count in enumerate(reliability.counts)
    ]
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
