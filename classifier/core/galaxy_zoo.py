"""Answers in Galaxy Zoo's terms: the four Galaxy10 groups and the volunteers' vote fractions.

Galaxy10 DECaLS was cut from Galaxy Zoo DECaLS votes, so a prediction can be given the way the
volunteers answered: how much of the probability falls in each of the four coarse groups the
decision tree separates first, and, when the model has a vote output, the expected fraction of
volunteers choosing each answer of the main questions. Plain Python and NumPy: training (ml/)
imports the questions from here, and serving builds every result's ``galaxy_zoo`` with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from classifier.core.galaxy10 import GROUP_OF_CLASS, NUM_CLASSES, round_probability

# Question -> answers, in the column order of the Galaxy Zoo DECaLS vote table. The vote
# output has one value per answer, in this order (ANSWER_SLICES).
QUESTIONS: dict[str, tuple[str, ...]] = {
    "smooth-or-featured": ("smooth", "featured-or-disk", "artifact"),
    "disk-edge-on": ("yes", "no"),
    "has-spiral-arms": ("yes", "no"),
    "bar": ("strong", "weak", "no"),
    "bulge-size": ("dominant", "large", "moderate", "small", "none"),
    "how-rounded": ("round", "in-between", "cigar-shaped"),
    "edge-on-bulge": ("boxy", "none", "rounded"),
    "spiral-winding": ("tight", "medium", "loose"),
    "spiral-arm-count": ("1", "2", "3", "4", "more-than-4", "cant-tell"),
    "merging": ("none", "minor-disturbance", "major-disturbance", "merger"),
}
NUM_ANSWERS = sum(len(answers) for answers in QUESTIONS.values())


def answer_slices(questions: Mapping[str, Sequence[str]]) -> dict[str, slice]:
    """Where each question's answers lie in an output that lists ``questions``' answers in order."""
    out, start = {}, 0
    for question, answers in questions.items():
        out[question] = slice(start, start + len(answers))
        start += len(answers)
    return out


ANSWER_SLICES: dict[str, slice] = answer_slices(QUESTIONS)

# The questions a prediction answers: the ones that decide the Galaxy10 class, and that a
# reader of the result can check against the image.
MAIN_QUESTIONS: tuple[str, ...] = (
    "smooth-or-featured",
    "disk-edge-on",
    "bar",
    "has-spiral-arms",
    "bulge-size",
    "how-rounded",
    "merging",
)

# The four Galaxy10 groups as JSON keys, in the order of classifier.core.galaxy10.GROUPS.
GROUP_KEYS: tuple[str, ...] = ("disturbed_or_merging", "smooth", "face_on_disk", "edge_on_disk")


def group_probabilities(probabilities: Sequence[float] | np.ndarray) -> dict[str, float]:
    """The summed class probabilities of each Galaxy10 group, keyed by GROUP_KEYS."""
    row = np.asarray(probabilities, dtype=np.float64)
    if row.shape != (NUM_CLASSES,):
        raise ValueError(f"expected {NUM_CLASSES} class probabilities, got shape {row.shape}")
    sums = np.zeros(len(GROUP_KEYS))
    np.add.at(sums, list(GROUP_OF_CLASS), row)
    return {key: round_probability(p) for key, p in zip(GROUP_KEYS, sums, strict=True)}


def question_fractions(
    fractions: Sequence[float] | np.ndarray,
    questions: Mapping[str, Sequence[str]] = QUESTIONS,
) -> dict[str, dict[str, float]]:
    """The main questions' answer fractions from a vote output laid out as ``questions``.

    Each question is renormalised in float64, so its fractions add up to 1 even after the
    quantised model's rounding.
    """
    row = np.clip(np.asarray(fractions, dtype=np.float64), 0.0, None)
    slices = answer_slices(questions)
    expected = sum(len(answers) for answers in questions.values())
    if row.shape != (expected,):
        raise ValueError(f"expected {expected} answer fractions, got shape {row.shape}")
    out: dict[str, dict[str, float]] = {}
    for question in MAIN_QUESTIONS:
        if question not in slices:
            continue
        part = row[slices[question]]
        total = part.sum()
        part = part / total if total > 0 else np.full(len(part), 1.0 / len(part))
        out[question] = {
            answer: round_probability(f) for answer, f in zip(questions[question], part, strict=True)
        }
    return out


def galaxy_zoo_answer(
    probabilities: Sequence[float] | np.ndarray,
    fractions: Sequence[float] | np.ndarray | None = None,
    questions: Mapping[str, Sequence[str]] = QUESTIONS,
) -> dict[str, Any]:
    """A prediction's ``galaxy_zoo``: the group sums, and the main questions' vote fractions
    (None when the model has no vote output). JSON-ready: plain dicts, str keys, floats."""
    return {
        "groups": group_probabilities(probabilities),
        "questions": None if fractions is None else question_fractions(fractions, questions),
    }


# The order galaxy_zoo_answer writes questions in (MAIN_QUESTIONS), then any other question.
_ANSWER_ORDER = tuple(
    (question, QUESTIONS[question])
    for question in (*MAIN_QUESTIONS, *(q for q in QUESTIONS if q not in MAIN_QUESTIONS))
)


def in_canonical_order(galaxy_zoo: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored ``galaxy_zoo`` with its groups and questions in the order the model gives them.

    PostgreSQL's jsonb keeps keys in its own order (shorter keys first); readers of the API
    and the JSON exports get them as galaxy_zoo_answer builds them: groups in GROUP_KEYS order,
    questions in MAIN_QUESTIONS order, each question's answers in QUESTIONS order."""
    if galaxy_zoo is None:
        return None
    groups = galaxy_zoo.get("groups") or {}
    questions = galaxy_zoo.get("questions")
    ordered_questions = None
    if questions is not None:
        ordered_questions = {
            question: {
                answer: questions[question][answer] for answer in answers if answer in questions[question]
            }
            for question, answers in _ANSWER_ORDER
            if question in questions
        }
    return {
        "groups": {key: groups[key] for key in GROUP_KEYS if key in groups},
        "questions": ordered_questions,
    }
