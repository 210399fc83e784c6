"""A phone photo's stored copy, without its metadata, still displays upright in the
browser: the orientation-only EXIF does its job (issue 14, item 8).

- visitor: anonymous; uploads a photo taken with the phone held sideways.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from classifier.models import Prediction
from classifier.tests.test_metadata import LEAKS, camera_exif, picture, save

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sideways_phone_photo_displays_upright_without_its_metadata(live_server, page):
    raw = picture(size=(120, 60))  # stored sideways; EXIF orientation 6 turns it to 60 x 120
    original = save(raw, "JPEG", exif=camera_exif(6), quality=92)
    page.goto(f"{live_server.url}/")

    page.get_by_label("Galaxy images").set_input_files(
        files=[{"name": "sideways.jpg", "mimeType": "image/jpeg", "buffer": original}]
    )
    page.get_by_role("button", name="Classify").click()
    page.wait_for_url(re.compile(r"/predictions/\d+/$"))

    prediction = Prediction.objects.get()
    assert (prediction.width, prediction.height) == (60, 120)
    image = page.locator(".result-image img")
    expect(image).to_be_visible()
    page.wait_for_function("document.querySelector('.result-image img').complete")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [60, 120]
    served = page.request.get(image.evaluate("img => img.src")).body()
    for leak in LEAKS:
        assert leak not in served
