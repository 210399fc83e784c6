"""classifier.core.galaxy_zoo: the groups and vote fractions every prediction carries."""

import json

import numpy as np
import pytest

from classifier.core import galaxy10, galaxy_zoo
from ml import votes


def test_questions_are_the_vote_tables_and_the_main_ones_are_among_them():
    assert votes.QUESTIONS is galaxy_zoo.QUESTIONS
    assert votes.NUM_ANSWERS == galaxy_zoo.NUM_ANSWERS == len(votes.ANSWER_COLUMNS)
    assert set(galaxy_zoo.MAIN_QUESTIONS) <= set(galaxy_zoo.QUESTIONS)
    assert len(galaxy_zoo.GROUP_KEYS) == len(galaxy10.GROUPS)
    for key, group in zip(galaxy_zoo.GROUP_KEYS, galaxy10.GROUPS, strict=True):
        assert key == group.replace(" ", "_").replace("-", "_")


def test_groups_sum_the_class_probabilities_and_add_up_to_one():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(galaxy10.NUM_CLASSES))
    answer = galaxy_zoo.galaxy_zoo_answer(probabilities)
    assert answer["questions"] is None
    groups = answer["groups"]
    assert list(groups) == list(galaxy_zoo.GROUP_KEYS)
    assert sum(groups.values()) == pytest.approx(1.0, abs=1e-3)
    assert groups["smooth"] == round(float(probabilities[2:5].sum()), 4)
    assert groups["edge_on_disk"] == round(float(probabilities[8:].sum()), 4)
    json.dumps(answer)


def test_questions_give_the_main_ones_renormalised_in_order():
    rng = np.random.default_rng(1)
    fractions = rng.uniform(0.0, 1.0, galaxy_zoo.NUM_ANSWERS)
    answer = galaxy_zoo.galaxy_zoo_answer(np.full(10, 0.1), fractions)
    questions = answer["questions"]
    assert list(questions) == list(galaxy_zoo.MAIN_QUESTIONS)
    for question, answers in questions.items():
        assert tuple(answers) == galaxy_zoo.QUESTIONS[question]
        assert sum(answers.values()) == pytest.approx(1.0, abs=1e-3)
    part = fractions[galaxy_zoo.ANSWER_SLICES["bar"]]
    assert questions["bar"]["weak"] == round(float(part[1] / part.sum()), 4)
    json.dumps(answer)


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="10 class probabilities"):
        galaxy_zoo.galaxy_zoo_answer(np.ones(9) / 9)
    with pytest.raises(ValueError, match="answer fractions"):
        galaxy_zoo.galaxy_zoo_answer(np.full(10, 0.1), np.ones(5))
