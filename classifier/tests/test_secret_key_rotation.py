"""Rotating DJANGO_SECRET_KEY with the old key in DJANGO_SECRET_KEY_FALLBACKS keeps people logged in."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

OLD_KEY = "old-secret-key-" + "o" * 40
NEW_KEY = "new-secret-key-" + "n" * 40


def logged_in_client(settings, user) -> Client:
    settings.SECRET_KEY = OLD_KEY
    client = Client()
    client.force_login(user)
    assert client.get("/history/").status_code == 200
    return client


def test_with_the_old_key_as_a_fallback_sessions_survive_the_rotation(settings, user):
    client = logged_in_client(settings, user)
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert client.get("/history/").status_code == 200


def test_without_the_fallback_everyone_is_logged_out(settings, user):
    client = logged_in_client(settings, user)
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get("/history/").status_code == 302
