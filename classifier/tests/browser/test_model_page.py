"""The model page as a browser lays it out: no empty panel, figures drawn, nothing overflowing."""

from __future__ import annotations

import pytest

from classifier.tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# How much taller than its content a panel may be: its padding and border, with some slack.
PANEL_SLACK_PX = 48


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_served_model_panel_is_as_tall_as_its_facts(live_server, browser, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(f"{live_server.url}/model/")

    panel = page.locator("section.served-model").bounding_box()
    content = page.evaluate(
        """() => {
            const panel = document.querySelector("section.served-model");
            const boxes = [...panel.children].map((child) => child.getBoundingClientRect());
            return Math.max(...boxes.map((box) => box.bottom)) - Math.min(...boxes.map((box) => box.top));
        }"""
    )
    page_width = page.evaluate("document.documentElement.scrollWidth")
    context.close()

    assert panel["height"] <= content + PANEL_SLACK_PX
    assert page_width <= viewport["width"], "the page scrolls sideways"


def test_the_reliability_diagram_and_confusion_matrix_are_drawn(live_server, page):
    page.goto(f"{live_server.url}/model/")

    chart = page.locator("svg.reliability-chart").first.bounding_box()
    bars = page.locator("svg.reliability-chart rect.rel-bar").count()
    matrix = page.locator("table.confusion-table").first

    assert chart["width"] > 200
    assert chart["height"] > 200
    assert bars > 0
    assert matrix.is_visible()
    assert not page.locator("#training-configuration").evaluate("(details) => details.open")


def test_the_model_page_in_spanish_draws_spanish_axis_labels(live_server, page):
    page.context.add_cookies([{"name": "django_language", "value": "es", "url": live_server.url}])
    page.goto(f"{live_server.url}/model/")

    labels = page.locator("svg.reliability-chart text.rel-axis").evaluate_all(
        "(texts) => texts.map((text) => text.textContent)"
    )

    assert labels == ["Confianza", "Exactitud"]
