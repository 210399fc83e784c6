"""What the pages show of one prediction: its class, its probabilities as a bar chart, and
whether the model was unsure (the results grid, the detail and the delete pages)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from classifier.core.galaxy10 import GALAXY10_CLASSES
from classifier.models import Prediction


def probability_rows(prediction: Prediction, *, top2: list, unsure: bool) -> list[dict[str, Any]]:
    """One row per class for the bar chart, with the top-1 and (when unsure) top-2 marked."""
    ranked = [index for index, _name, _p in top2]
    rows = []
    for galaxy_class in GALAXY10_CLASSES:
        probability = float(prediction.probabilities[galaxy_class.index])
        rows.append(
            {
                "index": galaxy_class.index,
                "name": galaxy_class.name,
                "probability": probability,
                "is_top": galaxy_class.index == ranked[0],
                "is_second": unsure and len(ranked) > 1 and galaxy_class.index == ranked[1],
            }
        )
    return rows


def prediction_context(prediction: Prediction) -> dict[str, Any]:
    # Below this top-1 confidence the pages highlight the two most likely classes.
    unsure = prediction.confidence < settings.UNSURE_CONFIDENCE_THRESHOLD
    top2 = prediction.top2
    return {
        "prediction": prediction,
        "galaxy_class": GALAXY10_CLASSES[prediction.class_index],
        "probability_rows": probability_rows(prediction, top2=top2, unsure=unsure),
        "unsure": unsure,
        "runner_up": GALAXY10_CLASSES[top2[1][0]] if len(top2) > 1 else None,
        "runner_up_probability": top2[1][2] if len(top2) > 1 else None,
        "unsure_threshold": settings.UNSURE_CONFIDENCE_THRESHOLD,
    }
