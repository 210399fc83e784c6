"""The result page's Galaxy Zoo tree in a real browser: the likeliest path drawn apart from the
rest and said in words, the answers' bars sized by their fractions, nothing wider than a phone,
and the same tree in Spanish."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from classifier.tests.browser.conftest import PHONE
from classifier.tests.factories import PredictionFactory
from classifier.tests.galaxy_zoo_support import WITH_VOTES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _border(page, question: str) -> str:
    return page.evaluate(
        "q => getComputedStyle(document.querySelector(`.gz-question[data-question='${q}']`)).borderLeftColor",
        question,
    )


def test_the_tree_marks_the_likeliest_path_in_both_languages(live_server, page, log_in):
    get_user_model().objects.create_user(username="astronomer", password="m31-andromeda-9")
    prediction = PredictionFactory(galaxy_zoo=WITH_VOTES)
    url = prediction.get_absolute_url()
    log_in(page, "astronomer", "m31-andromeda-9", next_url=url)

    tree = page.locator("#galaxy-zoo-tree")
    assert tree.is_visible()
    bar = page.locator(".gz-question[data-question='bar']")
    assert "Is there a bar?" in bar.inner_text()
    assert "(on the likeliest path)" in bar.text_content()
    top = bar.locator(".gz-answer.is-top")
    assert top.get_attribute("data-answer") == "strong"
    assert "likeliest" in top.inner_text()
    # The path is drawn apart from the questions off it, not only written.
    assert _border(page, "bar") == _border(page, "disk-edge-on") != _border(page, "how-rounded")
    # A bar's width follows its fraction (60% of its track).
    widths = top.locator(".mini-bar").evaluate(
        "track => [track, track.firstElementChild].map(box => box.getBoundingClientRect().width)"
    )
    assert widths[1] == pytest.approx(0.6 * widths[0], abs=2)
    assert page.locator("#galaxy-zoo-groups tr.is-top").get_attribute("data-group") == "face_on_disk"
    if os.environ.get("GZ_SCREENSHOT"):
        page.locator("#galaxy-zoo").screenshot(path=os.environ["GZ_SCREENSHOT"])

    page.set_viewport_size(PHONE)
    page.reload()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0

    page.context.add_cookies([{"name": "django_language", "value": "es", "url": live_server.url}])
    page.reload()
    bar = page.locator(".gz-question[data-question='bar']")
    assert "¿Tiene barra?" in bar.inner_text()
    assert "la más probable" in bar.locator(".gz-answer.is-top").inner_text()
