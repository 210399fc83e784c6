"""Size limits on the upload page, as a reader meets them in the browser.

The script refuses a file over MAX_UPLOAD_BYTES before sending anything, and
explains a 413 for the whole request (from the app, or from a proxy's own page).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from classifier.models import Prediction
from classifier.tests.utils import make_image_bytes, media_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def images(tmp_path):
    small = tmp_path / "small.png"
    small.write_bytes(make_image_bytes(size=(32, 32)))
    # An uncompressed 100x100 BMP is 30,054 bytes.
    big = tmp_path / "big.bmp"
    big.write_bytes(make_image_bytes(fmt="BMP", size=(100, 100)))
    return small, big


def upload_posts(page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
    return sent


def test_a_file_over_the_limit_is_refused_beside_it_before_sending(
    live_server, page, settings, images, media_root
):
    settings.MAX_UPLOAD_BYTES = 20_000
    small, big = images
    page.goto(f"{live_server.url}/")
    sent = upload_posts(page)

    page.get_by_label("Galaxy images").set_input_files([str(small), str(big)])

    big_item = page.locator('#file-list .file-item[data-filename="big.bmp"]')
    expect(big_item).to_have_class(re.compile(r"\bhas-error\b"))
    expect(big_item.locator(".file-error")).to_have_text(
        "This image is 29.3 KB, more than the limit of 19.5\N{NO-BREAK SPACE}KB per image. "
        "Remove it or choose a smaller one."
    )
    expect(page.locator('#file-list .file-item[data-filename="small.png"] .file-error')).to_have_count(0)

    page.get_by_role("button", name="Classify").click()

    expect(page.locator("#upload-errors")).to_contain_text("too large to upload, so nothing was sent")
    expect(big_item.locator(".file-error")).to_contain_text("more than the limit")
    assert sent == []
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []

    big_item.get_by_role("button", name="Remove big.bmp").click()
    page.get_by_role("button", name="Classify").click()
    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    assert Prediction.objects.get().original_filename == "small.png"


def test_a_request_over_the_servers_cap_is_explained_beside_the_form(
    live_server, page, settings, images, media_root
):
    settings.MAX_REQUEST_BYTES = 20_000
    _small, big = images
    page.goto(f"{live_server.url}/")

    page.get_by_label("Galaxy images").set_input_files(str(big))
    page.get_by_role("button", name="Classify").click()

    expect(page.locator("#upload-errors")).to_contain_text(
        "The upload is too large (more than 19.5\N{NO-BREAK SPACE}KB in all), so nothing was saved."
    )
    assert page.url == f"{live_server.url}/"
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_a_proxys_own_413_page_is_explained_too(live_server, page, images):
    # A reverse proxy with a smaller body limit answers with its own HTML page, not the app's JSON.
    page.route(
        f"{live_server.url}/",
        lambda route: (
            route.fulfill(status=413, content_type="text/html", body="<h1>413</h1>")
            if route.request.method == "POST"
            else route.continue_()
        ),
    )
    small, _big = images
    page.goto(f"{live_server.url}/")

    page.get_by_label("Galaxy images").set_input_files(str(small))
    page.get_by_role("button", name="Classify").click()

    expect(page.locator("#upload-errors")).to_contain_text(
        "The upload was too large for the server, so nothing was saved."
    )
    expect(page.get_by_role("button", name="Classify")).to_be_enabled()
