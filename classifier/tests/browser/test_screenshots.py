"""Screenshots of every main page, at desktop and phone widths, into docs/screenshots/.

Run explicitly (it rewrites the PNGs shown in the README):

    pytest -m screenshots classifier/tests/browser/test_screenshots.py

The pages show real Galaxy10 DECaLS images classified by the shipped model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from classifier.models import Prediction
from classifier.tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.screenshots, pytest.mark.django_db(transaction=True)]

SCREENSHOT_DIR = Path(settings.BASE_DIR) / "docs" / "screenshots"
# One image of each class, so that the grid and the history show the variety of the data.
SHOWCASE = [f"c{index}_0.jpg" for index in range(10)]


def shoot(page, name: str, width_name: str) -> Path:
    path = SCREENSHOT_DIR / f"{name}-{width_name}.png"
    page.wait_for_load_state("networkidle")
    # A full-page screenshot includes thumbnails below the fold that lazy loading skipped.
    page.evaluate(
        """() => Promise.all([...document.images].map((img) => {
            img.loading = "eager";
            return img.complete ? null : new Promise((done) => { img.onload = img.onerror = done; });
        }))"""
    )
    page.screenshot(path=str(path), full_page=True)
    return path


def test_screenshots_of_main_pages(live_server, browser, galaxy_images):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    by_name = {path.name: path for path in galaxy_images}
    showcase = [by_name[name] for name in SHOWCASE if name in by_name] or galaxy_images[:10]
    get_user_model().objects.create_user(username="astronomer", password="m31-andromeda-9")
    written: list[Path] = []

    for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        page.goto(f"{live_server.url}/")
        written.append(shoot(page, "upload", width_name))

        page.get_by_label("Galaxy images").set_input_files([str(p) for p in showcase[:4]])
        written.append(shoot(page, "upload-previews", width_name))
        if width_name == "desktop":
            page.get_by_label("Galaxy images").set_input_files([str(p) for p in showcase])
        page.get_by_role("button", name="Classify").click()
        page.wait_for_url(re.compile(r"/results/\?ids="))
        written.append(shoot(page, "results", width_name))

        # This session may only open its own uploads; show the one the model is least sure of.
        own_ids = [
            int(pk) for pk in re.search(r"ids=([\d%C,]+)", page.url).group(1).replace("%2C", ",").split(",")
        ]
        detail = Prediction.objects.filter(pk__in=own_ids).order_by("confidence").first()
        page.goto(f"{live_server.url}{detail.get_absolute_url()}")
        written.append(shoot(page, "detail", width_name))

        page.goto(f"{live_server.url}/classes/")
        written.append(shoot(page, "classes", width_name))
        page.goto(f"{live_server.url}/model/")
        written.append(shoot(page, "model", width_name))

        page.goto(f"{live_server.url}/history/")
        written.append(shoot(page, "login", width_name))
        page.get_by_label("Username").fill("astronomer")
        page.get_by_label("Password").fill("m31-andromeda-9")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/history/$"))
        written.append(shoot(page, "history", width_name))
        context.close()

    assert all(path.stat().st_size > 10_000 for path in written)
