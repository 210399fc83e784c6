"""Layout checks in a real browser: the header fits one row at desktop width in English and
Spanish, the history filters line up, and the upload page's Clear button and previews."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from classifier.tests.factories import PredictionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005fe02fea7d6a8e20000000049454e44ae426082"
)


@pytest.fixture
def curator():
    # Staff see every header link (Admin too): the widest header there is.
    return get_user_model().objects.create_user(
        username="curator", password="ngc-224-curator", is_staff=True, is_superuser=True
    )


def set_language(page, live_server, code):
    page.context.add_cookies([{"name": "django_language", "value": code, "url": live_server.url}])


def boxes(page, selector):
    return page.eval_on_selector_all(
        selector, "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; })"
    )


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_header_is_one_row_at_1280px_when_logged_in(live_server, page, log_in, curator, language):
    log_in(page, "curator", "ngc-224-curator", next_url="/history/")
    set_language(page, live_server, language)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/history/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    brand_top, brand_bottom = boxes(page, ".brand")[0]
    # Every link, the log-out button and the language switcher sit on the brand's row...
    for top, bottom in boxes(page, ".site-nav li, .language-form"):
        assert top < brand_bottom, (language, top, brand_bottom)
        assert bottom > brand_top, (language, bottom, brand_top)
    # ...so the header is one row tall: its tallest item (the nav links) plus its padding.
    height = page.eval_on_selector(".site-header", "e => e.getBoundingClientRect().height")
    assert height < 70, height


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_history_filters_line_up(live_server, page, log_in, curator, language):
    log_in(page, "curator", "ngc-224-curator", next_url="/history/")
    set_language(page, live_server, language)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/history/")
    controls = boxes(page, ".filters .field > input, .filters .field > select")
    labels = boxes(page, ".filters .field > label")
    assert len(controls) == len(labels) == 6
    # Fields on one row (controls starting within a control's height of each other) have their
    # controls at the same top, and their labels ending at the same line.
    rows: dict[int, list[int]] = {}
    for index, (top, _bottom) in enumerate(controls):
        row = next((key for key in rows if abs(key - top) < 30), round(top))
        rows.setdefault(row, []).append(index)
    for members in rows.values():
        assert max(controls[i][0] for i in members) - min(controls[i][0] for i in members) < 1
        assert max(labels[i][1] for i in members) - min(labels[i][1] for i in members) < 1


def test_clear_shows_only_when_files_are_chosen(live_server, page):
    page.goto(f"{live_server.url}/")
    clear = page.locator("#upload-clear")
    expect(clear).to_be_hidden()
    page.get_by_label("Galaxy images").set_input_files(
        [{"name": "tiny.png", "mimeType": "image/png", "buffer": PNG_1PX}]
    )
    expect(clear).to_be_visible()
    clear.click()
    expect(page.locator("#file-list .file-item")).to_have_count(0)
    expect(clear).to_be_hidden()


def test_a_file_the_browser_cannot_show_gets_a_placeholder_not_a_broken_image(live_server, page):
    page.goto(f"{live_server.url}/")
    page.get_by_label("Galaxy images").set_input_files(
        [
            {"name": "cutout.fits", "mimeType": "application/fits", "buffer": b"SIMPLE  =  T" + b" " * 2868},
            {"name": "fake.png", "mimeType": "image/png", "buffer": b"not a png at all"},
            {"name": "tiny.png", "mimeType": "image/png", "buffer": PNG_1PX},
        ]
    )
    items = page.locator("#file-list .file-item")
    expect(items).to_have_count(3)
    for name, extension in (("cutout.fits", "FITS"), ("fake.png", "PNG")):
        item = page.locator(f'#file-list .file-item[data-filename="{name}"]')
        expect(item.locator("img")).to_have_count(0)
        expect(item.locator(".file-placeholder")).to_have_text(extension)
        expect(item.locator(".file-name")).to_have_text(name)
    shown = page.locator('#file-list .file-item[data-filename="tiny.png"] img')
    expect(shown).to_have_attribute("alt", "Preview of tiny.png")
    assert shown.evaluate("img => img.complete && img.naturalWidth") == 1


def test_the_file_inputs_description_exists(live_server, page):
    page.goto(f"{live_server.url}/")
    described_by = page.get_by_label("Galaxy images").get_attribute("aria-describedby")
    assert described_by
    for element_id in described_by.split():
        expect(page.locator(f"#{element_id}")).to_have_count(1)
    expect(page.locator(f"#{described_by.split()[0]}")).to_contain_text("Drag and drop images here")


def test_the_admin_changelist_fits_at_1280px_with_long_model_versions(live_server, page, curator):
    PredictionFactory(model_version="2026.11.26-effnetlite0-128px-float16-c6710a4c", user=curator)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/classifier/prediction/")
    page.get_by_label("Username").fill("curator")
    page.get_by_label("Password").fill("ngc-224-curator")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/admin/classifier/prediction/")
    page.set_viewport_size({"width": 1280, "height": 900})
    # Nothing is cut off or scrolled away: the table is no wider than its container...
    table_width, room = page.eval_on_selector(
        "#result_list", "e => [e.scrollWidth, e.closest('.results').clientWidth]"
    )
    assert table_width <= room
    # ...and the version is shown whole, wrapped at its hyphens.
    expect(page.locator("td.field-model_version")).to_have_text(
        "2026.11.26-effnetlite0-128px-float16-c6710a4c"
    )
