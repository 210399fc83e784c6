"""Basic accessibility checks on every main page, as a logged-in reader sees them.

Every image has an alt attribute, every form control has a label, there is
one h1 and a skip link, and the focused element is visibly outlined.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from classifier.tests.factories import PredictionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIND_PROBLEMS = """() => {
    const problems = [];
    for (const img of document.querySelectorAll("img")) {
        if (!img.hasAttribute("alt")) problems.push("img without alt: " + img.src);
    }
    for (const control of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
        const labelled = control.labels.length || control.getAttribute("aria-label")
            || control.getAttribute("aria-labelledby");
        if (!labelled) problems.push("control without label: " + (control.name || control.id));
    }
    if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
    if (!document.querySelector("a.skip-link[href='#main']")) problems.push("no skip link");
    if (!document.documentElement.lang) problems.push("no lang attribute");
    return problems;
}"""


def test_main_pages_have_alt_text_labels_and_one_heading(live_server, page, log_in):
    get_user_model().objects.create_user(username="astronomer", password="m31-andromeda-9")
    prediction = PredictionFactory()
    log_in(page, "astronomer", "m31-andromeda-9")

    for path in (
        "/",
        "/history/",
        prediction.get_absolute_url(),
        f"/results/?ids={prediction.pk}",
        "/classes/",
        "/model/",
    ):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate(FIND_PROBLEMS) == [], path


def test_focus_is_visible(live_server, page):
    page.goto(f"{live_server.url}/")

    page.keyboard.press("Tab")
    page.keyboard.press("Tab")

    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
