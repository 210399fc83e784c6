"""Every page writes a moment the same way: date, 24-hour time and the time zone's name."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import translation

from classifier.predictions.inference import get_classifier
from classifier.templatetags.classifier_tags import timestamp
from classifier.tests.factories import PredictionFactory
from classifier.web.model_page import parse_timestamp

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 1, 15, 21, 5, 30, tzinfo=UTC)
TIME_ELEMENT = re.compile(r'<time datetime="([^"]+)">([^<]+)</time>')


def test_a_moment_is_shown_in_the_sites_time_zone_with_its_name(settings):
    settings.TIME_ZONE = "Europe/Madrid"

    html = timestamp(MOMENT)

    assert html == '<time datetime="2026-01-15T22:05:30+01:00">2026-01-15 22:05 CET</time>'


def test_the_format_does_not_change_with_the_language(settings):
    settings.TIME_ZONE = "UTC"
    with translation.override("es"):
        spanish = timestamp(MOMENT)
    with translation.override("en"):
        english = timestamp(MOMENT)

    assert spanish == english == '<time datetime="2026-01-15T21:05:30+00:00">2026-01-15 21:05 UTC</time>'


def test_not_a_moment_shows_nothing():
    assert timestamp(None) == ""
    assert timestamp("2026-01-15") == ""


def test_history_detail_and_model_pages_write_moments_alike(client, user, settings):
    settings.TIME_ZONE = "America/New_York"
    prediction = PredictionFactory(created_at=MOMENT)
    client.force_login(user)
    created = parse_timestamp(get_classifier().manifest.created_at)

    pages = {
        "history": client.get(reverse("classifier:history")).content.decode(),
        "detail": client.get(prediction.get_absolute_url()).content.decode(),
        "model": client.get(reverse("classifier:model")).content.decode(),
    }

    expected = [("2026-01-15T16:05:30-05:00", "2026-01-15 16:05 EST")]
    for name in ("history", "detail"):
        assert TIME_ELEMENT.findall(pages[name]) == expected, name
    assert TIME_ELEMENT.findall(pages["model"]) == [
        (timestamp(created).split('"')[1], re.search(r">(.*)<", timestamp(created)).group(1))
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", TIME_ELEMENT.findall(pages["model"])[0][1])
