"""Login attempts are limited (django-axes), on the site and in the admin, and the answers
are the same for accounts that exist and for those that do not."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("login")


def attempt(client, username, password, *, url=LOGIN_URL, address="198.51.100.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def without_tokens(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_the_right_password_no_longer_works_after_the_failure_limit(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "reader", "wrong-guess").status_code == 200
    # The failure that reaches the limit already answers with the lockout page.
    assert attempt(client, "reader", "wrong-guess").status_code == 429
    locked = attempt(client, "reader", "reader-pass-123")
    assert locked.status_code == 429
    assert "Too many login attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_limit_counts_guesses_at_any_username_from_one_address(client, user):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"someone-{n}", "guess")
    assert attempt(client, "reader", "reader-pass-123").status_code == 429


def test_one_account_is_protected_from_guesses_spread_over_many_addresses(client, user):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, "reader", "guess", address=f"203.0.113.{n + 1}")
    assert attempt(client, "reader", "reader-pass-123", address="192.0.2.99").status_code == 429


def test_known_and_unknown_accounts_get_the_same_answers(client, user):
    known_failure = attempt(client, "reader", "wrong", address="198.51.100.10")
    unknown_failure = attempt(client, "nobody-here", "wrong", address="198.51.100.11")
    assert known_failure.status_code == unknown_failure.status_code == 200
    assert without_tokens(known_failure.content.decode()).replace("reader", "X") == without_tokens(
        unknown_failure.content.decode()
    ).replace("nobody-here", "X")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        known = attempt(client, "reader", "wrong", address="198.51.100.20")
        unknown = attempt(client, "nobody-here", "wrong", address="198.51.100.21")
    assert known.status_code == unknown.status_code == 429
    assert without_tokens(known.content.decode()) == without_tokens(unknown.content.decode())


def test_the_admin_login_is_limited_too(client, staff):
    admin_login = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, "staff", "wrong", url=admin_login)
    response = attempt(client, "staff", "staff-pass-123", url=admin_login)
    assert response.status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302


def test_a_successful_login_below_the_limit_resets_the_count(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "reader", "wrong")
    assert attempt(client, "reader", "reader-pass-123").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "reader", "wrong")
    assert attempt(client, "reader", "reader-pass-123").status_code == 302
