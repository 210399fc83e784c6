"""A job's gallery in Chromium, at 1280 px and 390 px, in English and Spanish: every thumbnail
loads and is described, nothing scrolls sideways, and the filters and the sort work from the form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Job, Prediction
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TITLE = {"en": "Galaxies of job", "es": "Galaxias del trabajo"}


@pytest.fixture
def job(user) -> Job:
    images = distinct_images(6)
    catalogue = "file,objid\n" + "".join(f"survey/north/g{i}.png,DESI-J{i:04d}+0012\n" for i in range(6))
    entries = [(f"survey/north/g{i}.png", data) for i, data in enumerate(images)]
    submission = submission_from_uploads(
        archive=zip_upload(make_zip([*entries, ("catalogue.csv", catalogue.encode())]))
    )
    created = job_services.job_create(
        name=submission.name, members=submission.members, catalogue=submission.catalogue, user=user
    )
    return run_chunks_inline(created)


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("language", ["en", "es"])
def test_gallery_at_both_widths_and_languages(live_server, page, log_in, job, width, language):  # noqa: PLR0917 - fixtures
    log_in(page, "reader", "reader-pass-123", next_url=f"/jobs/{job.pk}/")
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/jobs/{job.pk}/galaxies/")
    expect(page.locator("h1")).to_contain_text(TITLE[language])
    cards = page.locator("#gallery .grid-card img")
    expect(cards).to_have_count(6)
    for image in cards.all():
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        assert image.get_attribute("alt").strip()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    # The long catalogue ids and file names wrap inside their cards.
    overflowing = page.eval_on_selector_all(
        "#gallery .grid-card", "cards => cards.filter(c => c.scrollWidth > c.clientWidth + 1).length"
    )
    assert overflowing == 0


def test_filter_and_sort_from_the_form(live_server, page, log_in, job):
    log_in(page, "reader", "reader-pass-123", next_url=f"/jobs/{job.pk}/")
    page.get_by_role("link", name="Browse the galaxies").click()
    page.wait_for_url(f"{live_server.url}/jobs/{job.pk}/galaxies/")
    predictions = list(Prediction.objects.filter(job=job))
    some_class = predictions[0].class_index
    page.get_by_label("Class", exact=True).select_option(str(some_class))
    page.get_by_label("Sort by").select_option("-confidence")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**class_index={some_class}**")
    expected = sorted((p for p in predictions if p.class_index == some_class), key=lambda p: -p.confidence)
    shown = page.locator("#gallery .grid-card").evaluate_all(
        "cards => cards.map(c => c.dataset.predictionId)"
    )
    assert shown == [str(p.pk) for p in expected]
    page.get_by_label("Confidence at least").fill("1")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#gallery-count")).to_contain_text("0 galaxies")
