"""The Prediction audit record."""

import pytest

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def test_str_and_url():
    prediction = PredictionFactory(original_filename="m87.png", class_index=5, class_name="Barred Spiral")
    prediction.confidence = 0.625
    assert str(prediction) == f"#{prediction.pk} m87.png: Barred Spiral (62.5%)"
    assert prediction.get_absolute_url().rstrip("/").endswith(str(prediction.pk))


def test_str_is_in_the_readers_language():
    # The admin shows it in titles, breadcrumbs and delete confirmations.
    from django.utils import translation

    prediction = PredictionFactory(original_filename="m87.png", class_index=5, class_name="Barred Spiral")
    prediction.confidence = 0.625
    with translation.override("es"):
        assert str(prediction) == f"#{prediction.pk} m87.png: Espiral barrada (62,5%)"


def test_probabilities_by_name_and_top2():
    probabilities = [0.0] * 10
    probabilities[3], probabilities[7], probabilities[0] = 0.6, 0.3, 0.1
    prediction = PredictionFactory(probabilities=probabilities)
    assert list(prediction.probabilities_by_name) == list(CLASS_NAMES)
    assert prediction.probabilities_by_name["In-between Round Smooth"] == 0.6
    assert prediction.top2 == [(3, CLASS_NAMES[3], 0.6), (7, CLASS_NAMES[7], 0.3)]
    assert prediction.class_index == 3


def test_ordering_is_newest_first():
    first, second = PredictionFactory(), PredictionFactory()
    from classifier.models import Prediction

    assert list(Prediction.objects.all()) == [second, first]
