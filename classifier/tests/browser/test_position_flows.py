"""The upload page's "By position" tab in a real browser, in English and Spanish, at desktop
and phone widths: a position is fetched from the stand-in cutout service and classified."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from classifier.models import Prediction
from classifier.tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def spanish_page(browser):
    context = browser.new_context(viewport=PHONE, locale="es-ES")
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def test_classify_a_sexagesimal_position(live_server, page, cutout_server):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="By position").click()
    page.wait_for_url(f"{live_server.url}/position/")
    expect(page.get_by_role("link", name="By position")).to_have_attribute("aria-current", "page")

    page.get_by_label("Sky positions").fill("10h00m27.912s +02d12m20.88s")
    page.get_by_role("button", name="Classify").click()

    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    prediction = Prediction.objects.get()
    expect(page.locator("#prediction-class")).to_have_text(prediction.class_name)
    expect(page.locator("#sky-position")).to_contain_text("150.116300°, 2.205800°")
    expect(page.locator("#viewer-link")).to_have_attribute(
        "href", "https://www.legacysurvey.org/viewer?ra=150.116300&dec=2.205800&zoom=15"
    )
    assert len(cutout_server.hits()) == 1


def test_the_tab_in_spanish_on_a_phone(live_server, spanish_page, cutout_server):
    page = spanish_page
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Por posición").click()
    page.wait_for_url(f"{live_server.url}/position/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_label("Posiciones en el cielo").fill("10 -85")
    page.get_by_role("button", name="Clasificar").click()
    expect(page.get_by_role("alert")).to_contain_text("El sondeo no tiene imágenes en esta posición")
    assert not Prediction.objects.exists()

    page.get_by_label("Posiciones en el cielo").fill("150.1163 2.2058")
    page.get_by_role("button", name="Clasificar").click()
    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    expect(page.locator("#sky-position")).to_contain_text("150.116300°, 2.205800°")
    expect(page.get_by_text("Posición en el cielo (AR, Dec)")).to_be_visible()
    expect(page.locator("#viewer-link")).to_have_text("visor de Legacy Surveys")
