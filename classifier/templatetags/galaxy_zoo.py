"""A prediction's answer in Galaxy Zoo's terms, as the result page and the admin show it: the
four Galaxy10 groups as bars, and the main questions as the volunteers' decision tree, with the
likeliest answer at each step marked and the questions on that path highlighted.

The question and answer keys are Galaxy Zoo DECaLS's (classifier.core.galaxy_zoo), stored and
served in English; their texts here are in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template
from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy

from classifier.core.galaxy10 import GROUPS
from classifier.core.galaxy_zoo import GROUP_KEYS, MAIN_QUESTIONS, QUESTIONS

register = template.Library()

# The contexts are written out in every call: makemessages reads only literal ones.
QUESTION_TEXTS: dict[str, Promise] = {
    "smooth-or-featured": pgettext_lazy("Galaxy Zoo question", "Smooth, featured, or an artifact?"),
    "disk-edge-on": pgettext_lazy("Galaxy Zoo question", "Is it a disk seen edge-on?"),
    "bar": pgettext_lazy("Galaxy Zoo question", "Is there a bar?"),
    "has-spiral-arms": pgettext_lazy("Galaxy Zoo question", "Are there spiral arms?"),
    "bulge-size": pgettext_lazy("Galaxy Zoo question", "How large is the central bulge?"),
    "how-rounded": pgettext_lazy("Galaxy Zoo question", "How rounded is it?"),
    "merging": pgettext_lazy("Galaxy Zoo question", "Is it merging or disturbed?"),
}

ANSWER_TEXTS: dict[tuple[str, str], Promise] = {
    ("smooth-or-featured", "smooth"): pgettext_lazy("Galaxy Zoo answer", "Smooth"),
    ("smooth-or-featured", "featured-or-disk"): pgettext_lazy("Galaxy Zoo answer", "Features or a disk"),
    ("smooth-or-featured", "artifact"): pgettext_lazy("Galaxy Zoo answer", "Star or artifact"),
    ("disk-edge-on", "yes"): pgettext_lazy("Galaxy Zoo answer", "Yes"),
    ("disk-edge-on", "no"): pgettext_lazy("Galaxy Zoo answer", "No"),
    ("bar", "strong"): pgettext_lazy("Galaxy Zoo answer", "Strong bar"),
    ("bar", "weak"): pgettext_lazy("Galaxy Zoo answer", "Weak bar"),
    ("bar", "no"): pgettext_lazy("Galaxy Zoo answer", "No bar"),
    ("has-spiral-arms", "yes"): pgettext_lazy("Galaxy Zoo answer", "Yes"),
    ("has-spiral-arms", "no"): pgettext_lazy("Galaxy Zoo answer", "No"),
    ("bulge-size", "dominant"): pgettext_lazy("Galaxy Zoo answer", "Dominant"),
    ("bulge-size", "large"): pgettext_lazy("Galaxy Zoo answer", "Large"),
    ("bulge-size", "moderate"): pgettext_lazy("Galaxy Zoo answer", "Moderate"),
    ("bulge-size", "small"): pgettext_lazy("Galaxy Zoo answer", "Small"),
    ("bulge-size", "none"): pgettext_lazy("Galaxy Zoo answer", "No bulge"),
    ("how-rounded", "round"): pgettext_lazy("Galaxy Zoo answer", "Completely round"),
    ("how-rounded", "in-between"): pgettext_lazy("Galaxy Zoo answer", "In between"),
    ("how-rounded", "cigar-shaped"): pgettext_lazy("Galaxy Zoo answer", "Cigar-shaped"),
    ("merging", "none"): pgettext_lazy("Galaxy Zoo answer", "Neither"),
    ("merging", "minor-disturbance"): pgettext_lazy("Galaxy Zoo answer", "Minor disturbance"),
    ("merging", "major-disturbance"): pgettext_lazy("Galaxy Zoo answer", "Major disturbance"),
    ("merging", "merger"): pgettext_lazy("Galaxy Zoo answer", "Merging"),
}

# A question and the questions asked next after each of its answers.
Branch = tuple[str, Mapping[str, tuple["Branch", ...]]]

# The main questions in the order Galaxy Zoo DECaLS asks them: a question under an answer is
# asked only of the volunteers who gave that answer; merging is asked of every galaxy.
TREE: tuple[Branch, ...] = (
    (
        "smooth-or-featured",
        {
            "smooth": (("how-rounded", {}),),
            "featured-or-disk": (
                ("disk-edge-on", {"no": (("bar", {}), ("has-spiral-arms", {}), ("bulge-size", {}))}),
            ),
        },
    ),
    ("merging", {}),
)


def question_text(question: str) -> str:
    """A question in the reader's language; one the texts lack is shown by its key."""
    return str(QUESTION_TEXTS.get(question, question))


def answer_text(question: str, answer: str) -> str:
    return str(ANSWER_TEXTS.get((question, answer), answer))


def _answers(question: str, fractions: Mapping[str, Any]) -> list[tuple[str, float]]:
    # Galaxy Zoo's order of the answers; the first of equal fractions is the likeliest.
    return [(answer, float(fractions[answer])) for answer in QUESTIONS[question] if answer in fractions]


def _nodes(
    branches: tuple[Branch, ...],
    questions: Mapping[str, Any],
    *,
    on_branch: bool,
    condition: str = "",
) -> list[dict[str, Any]]:
    nodes = []
    for question, below in branches:
        answers = _answers(question, questions.get(question) or {})
        if not answers:
            continue
        top = max(answers, key=lambda item: item[1])[0]
        children = []
        for answer, following in below.items():
            children += _nodes(
                following,
                questions,
                on_branch=on_branch and answer == top,
                condition=answer_text(question, answer),
            )
        nodes.append(
            {
                "key": question,
                "text": question_text(question),
                "condition": condition,
                "on_branch": on_branch,
                "answers": [
                    {
                        "key": answer,
                        "text": answer_text(question, answer),
                        "fraction": fraction,
                        "is_top": answer == top,
                    }
                    for answer, fraction in answers
                ],
                "children": children,
            }
        )
    return nodes


def galaxy_zoo_tree(galaxy_zoo: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The decision tree's questions that the prediction answers, each with its answers, the
    likeliest marked, and the questions asked after them; empty without vote fractions."""
    questions = (galaxy_zoo or {}).get("questions") or {}
    return _nodes(TREE, questions, on_branch=True)


def galaxy_zoo_groups(galaxy_zoo: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The four groups in Galaxy10's order, with the English group name (the galaxy_group filter
    translates it) and the likeliest marked; empty without them."""
    groups = (galaxy_zoo or {}).get("groups") or {}
    rows = [
        {"key": key, "name": name, "probability": float(groups[key])}
        for key, name in zip(GROUP_KEYS, GROUPS, strict=True)
        if key in groups
    ]
    top = max(rows, key=lambda row: row["probability"], default=None)
    for row in rows:
        row["is_top"] = row is top
    return rows


def galaxy_zoo_answer_rows(galaxy_zoo: Mapping[str, Any] | None) -> list[tuple[str, str, float]]:
    """(question, answer, fraction) in the reader's language, question by question: the admin's table."""
    questions = (galaxy_zoo or {}).get("questions") or {}
    return [
        (question_text(question), answer_text(question, answer), fraction)
        for question in MAIN_QUESTIONS
        for answer, fraction in _answers(question, questions.get(question) or {})
    ]


@register.inclusion_tag("classifier/_galaxy_zoo.html")
def galaxy_zoo_answers(galaxy_zoo: Mapping[str, Any] | None) -> dict[str, Any]:
    """The result page's section: the groups' bars, and the tree or a note that the model
    predicts no vote fractions."""
    return {"groups": galaxy_zoo_groups(galaxy_zoo), "tree": galaxy_zoo_tree(galaxy_zoo)}


@register.inclusion_tag("classifier/_galaxy_zoo_question.html")
def galaxy_zoo_question(node: Mapping[str, Any]) -> dict[str, Any]:
    """One question of the tree, its answers, and the questions that follow them."""
    return {"node": node}
