"""The site navigation: every page a user may use is reachable from it (issue 20)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def nav(html: str) -> str:
    return re.search(r'<nav class="site-nav".*?</nav>', html, re.S).group(0)


def test_logged_in_users_reach_the_jobs_page_from_every_page(client, user):
    client.force_login(user)
    jobs_url = reverse("classifier:job-new")
    for url in (reverse("classifier:upload"), reverse("classifier:history"), reverse("classifier:classes")):
        assert f'href="{jobs_url}"' in nav(client.get(url).content.decode()), url
    # On the jobs page itself the link is marked as the current page, and the page lists the jobs.
    html = client.get(jobs_url).content.decode()
    assert re.search(rf'href="{jobs_url}" id="nav-jobs" aria-current="page"', nav(html))
    assert 'id="jobs-heading"' in html


def test_the_jobs_link_is_translated(client, user):
    client.force_login(user)
    html = client.get(reverse("classifier:upload"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert re.search(r'id="nav-jobs"[^>]*>Trabajos</a>', nav(html))


def test_anonymous_visitors_get_no_jobs_link(client):
    # Jobs need a login: the link would only lead to the login page.
    assert 'id="nav-jobs"' not in client.get(reverse("classifier:upload")).content.decode()
