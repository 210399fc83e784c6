"""Switching the pages to Spanish and back with the language switcher, in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_switch_to_spanish_and_back_with_the_switcher(live_server, page):
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Classify galaxy images")

    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Change language").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Clasificar imágenes de galaxias")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert page.url == f"{live_server.url}/"
    expect(page.get_by_label("Imágenes de galaxias")).to_be_attached()
    expect(page.get_by_role("button", name="Clasificar", exact=True)).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Principal").get_by_role("link", name="Historial")
    ).to_be_visible()
    expect(page.get_by_label("Idioma")).to_have_value("es")

    # The choice is kept in a cookie, so the next page is in Spanish as well.
    page.get_by_role("navigation", name="Principal").get_by_role("link", name="Clases").click()
    expect(page.get_by_role("heading", level=3, name="Espiral barrada")).to_be_visible()

    page.get_by_label("Idioma").select_option("en")
    page.get_by_role("button", name="Cambiar idioma").click()

    expect(page.get_by_role("heading", level=3, name="Barred Spiral")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
