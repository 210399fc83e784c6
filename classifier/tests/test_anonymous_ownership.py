"""Anonymous uploaders' access to their own results: no id probing, a bounded lifetime, and
no capture through a session id planted beforehand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db


def upload(client) -> Prediction:
    image = SimpleUploadedFile("mine.png", make_image_bytes(), "image/png")
    response = client.post(reverse("classifier:upload"), {"images": [image]})
    assert response.status_code == 302
    return Prediction.objects.latest("pk")


def test_existing_and_missing_ids_answer_alike(client):
    existing = PredictionFactory()
    missing_pk = existing.pk + 1000
    there = client.get(f"/predictions/{existing.pk}/")
    absent = client.get(f"/predictions/{missing_pk}/")
    assert there.status_code == absent.status_code == 302
    assert there["Location"].replace(str(existing.pk), "N") == absent["Location"].replace(
        str(missing_pk), "N"
    )


def test_an_upload_changes_the_session_key(client):
    client.get(reverse("classifier:upload"))
    client.session.save()
    before = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    upload(client)
    assert client.cookies[django_settings.SESSION_COOKIE_NAME].value != before


def test_a_planted_session_id_does_not_capture_the_victims_uploads():
    attacker = Client()
    attacker.get(reverse("classifier:upload"))
    session = attacker.session
    session["planted"] = True
    session.save()
    planted = session.session_key
    victim = Client()
    victim.cookies[django_settings.SESSION_COOKIE_NAME] = planted
    prediction = upload(victim)
    assert victim.get(prediction.get_absolute_url()).status_code == 200
    assert attacker.cookies[django_settings.SESSION_COOKIE_NAME].value == planted
    assert attacker.get(prediction.get_absolute_url()).status_code == 302
    assert attacker.get(f"/media/{prediction.image.name}").status_code == 404


def test_ownership_ends_after_its_lifetime(client, settings):
    settings.ANONYMOUS_OWNERSHIP_SECONDS = 3600
    prediction = upload(client)
    assert client.get(prediction.get_absolute_url()).status_code == 200
    assert client.get(f"/media/{prediction.image.name}").status_code == 200
    Prediction.objects.filter(pk=prediction.pk).update(created_at=prediction.created_at - timedelta(hours=2))
    assert client.get(prediction.get_absolute_url()).status_code == 302
    assert client.get(f"/media/{prediction.image.name}").status_code == 404
    assert client.get(f"{reverse('classifier:results')}?ids={prediction.pk}").status_code == 302


def test_logging_in_changes_the_session_key(client, user):
    upload(client)
    before = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    client.post(reverse("login"), {"username": "reader", "password": "reader-pass-123"})
    assert client.cookies[django_settings.SESSION_COOKIE_NAME].value != before
