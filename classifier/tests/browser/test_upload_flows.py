"""Uploading real galaxy images in a real browser, as an anonymous visitor.

Anyone may classify; the visitor then sees the results of their own uploads.
"""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import expect

from classifier.models import Prediction
from classifier.tests.utils import media_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def pick(galaxy_images, *names):
    by_name = {path.name: path for path in galaxy_images}
    return [by_name.get(name, galaxy_images[i]) for i, name in enumerate(names)]


def test_upload_one_image_and_see_its_result(live_server, page, galaxy_images):
    (image,) = pick(galaxy_images, "c5_0.jpg")
    page.goto(f"{live_server.url}/")

    page.get_by_label("Galaxy images").set_input_files(str(image))
    preview = page.locator("#file-list .file-item")
    expect(preview).to_have_count(1)
    expect(preview.locator("img")).to_have_attribute("alt", f"Preview of {image.name}")
    page.get_by_role("button", name="Classify").click()

    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    prediction = Prediction.objects.get()
    expect(page.locator("#prediction-class")).to_have_text(prediction.class_name)
    expect(page.locator("#probabilities tbody tr")).to_have_count(10)
    expect(page.locator("#probabilities tr.is-top th")).to_contain_text(prediction.class_name)
    result_image = page.locator(".result-image img")
    expect(result_image).to_be_visible()
    assert result_image.evaluate("img => img.complete && img.naturalWidth > 0")
    assert prediction.original_filename == image.name
    assert prediction.source == Prediction.Source.WEB


def test_upload_several_images_and_see_the_grid(live_server, page, galaxy_images):
    images = pick(galaxy_images, "c2_0.jpg", "c6_1.jpg", "c8_2.jpg")
    page.goto(f"{live_server.url}/")

    page.get_by_label("Galaxy images").set_input_files([str(p) for p in images])
    expect(page.locator("#file-list .file-item")).to_have_count(3)
    page.get_by_role("button", name="Classify").click()

    page.wait_for_url(re.compile(r"/results/\?ids="))
    cards = page.locator("#results-grid .grid-card")
    expect(cards).to_have_count(3)
    expect(page.get_by_role("heading", level=1)).to_have_text("3 results")
    for prediction in Prediction.objects.all():
        card = page.locator(f'[data-prediction-id="{prediction.pk}"]')
        expect(card.locator(".grid-class")).to_have_text(prediction.class_name)
        expect(card.locator(".file-name")).to_have_text(prediction.original_filename)
        assert card.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    cards.first.get_by_role("link").click()
    expect(page.locator("#prediction-class")).to_be_visible()


def test_bad_file_shows_its_error_next_to_it_and_saves_nothing(
    live_server, page, galaxy_images, tmp_path, media_root
):
    (good,) = pick(galaxy_images, "c1_0.jpg")
    bad = tmp_path / "observing-notes.jpg"
    bad.write_text("seeing 1.2 arcsec, not an image")
    page.goto(f"{live_server.url}/")

    page.get_by_label("Galaxy images").set_input_files([str(good), str(bad)])
    page.get_by_role("button", name="Classify").click()

    bad_item = page.locator('#file-list .file-item[data-filename="observing-notes.jpg"]')
    expect(bad_item).to_have_class(re.compile(r"\bhas-error\b"))
    expect(bad_item.locator(".file-error")).to_contain_text("not a recognised image format")
    good_item = page.locator(f'#file-list .file-item[data-filename="{good.name}"]')
    expect(good_item.locator(".file-error")).to_have_count(0)
    expect(page.locator("#upload-errors")).to_contain_text("nothing was saved")
    assert page.url == f"{live_server.url}/"
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []

    bad_item.get_by_role("button", name="Remove observing-notes.jpg").click()
    page.get_by_role("button", name="Classify").click()
    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    assert Prediction.objects.count() == 1


def test_without_javascript_the_form_still_classifies_and_reports_errors(
    live_server, browser, galaxy_images, tmp_path
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    try:
        page.goto(f"{live_server.url}/")
        page.get_by_label("Galaxy images").set_input_files([str(galaxy_images[0]), str(bad)])
        page.get_by_role("button", name="Classify").click()
        expect(page.locator(".file-errors li")).to_contain_text("empty.png")
        assert Prediction.objects.count() == 0

        page.get_by_label("Galaxy images").set_input_files(str(galaxy_images[0]))
        page.get_by_role("button", name="Classify").click()
        page.wait_for_url(re.compile(r"/predictions/\d+/$"))
        expect(page.locator("#prediction-class")).to_have_text(Prediction.objects.get().class_name)
    finally:
        context.close()


def test_keyboard_user_reaches_the_skip_link_first(live_server, page):
    page.goto(f"{live_server.url}/")

    page.keyboard.press("Tab")

    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"


def test_phone_width_has_no_horizontal_scroll(live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        for path in ("/", "/classes/", "/model/"):
            page.goto(f"{live_server.url}{path}")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 390px"
    finally:
        context.close()


def test_progress_is_shown_while_uploading_and_classifying(live_server, context, page, galaxy_images):
    images = galaxy_images[:6]
    # A slow uplink makes the upload take a few seconds, long enough to watch.
    cdp = context.new_cdp_session(page)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 200, "downloadThroughput": -1, "uploadThroughput": 40 * 1024},
    )
    page.goto(f"{live_server.url}/")
    page.get_by_label("Galaxy images").set_input_files([str(p) for p in images])

    page.get_by_role("button", name="Classify").click()

    expect(page.locator("#upload-progress")).to_be_visible()
    expect(page.locator("#upload-progress-text")).to_contain_text(re.compile("Uploading|Classifying"))
    expect(page.get_by_role("button", name="Classify")).to_be_disabled()
    page.wait_for_url(re.compile(r"/results/\?ids="), timeout=60_000)
    expect(page.locator("#results-grid .grid-card")).to_have_count(len(images))


def test_drag_and_drop_adds_files_to_the_list(live_server, page, galaxy_images):
    image = galaxy_images[0]
    page.goto(f"{live_server.url}/")
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            return transfer;
        }""",
        [image.name, base64.b64encode(image.read_bytes()).decode()],
    )

    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": transfer})
    expect(page.locator("#dropzone")).to_have_class(re.compile(r"\bis-dragover\b"))
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})

    expect(page.locator("#dropzone")).not_to_have_class(re.compile(r"\bis-dragover\b"))
    expect(page.locator("#file-list .file-item .file-name")).to_have_text([image.name])
    page.get_by_role("button", name="Classify").click()
    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    assert Prediction.objects.get().original_filename == image.name
