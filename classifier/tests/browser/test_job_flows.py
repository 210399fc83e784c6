"""A job in the browser: submitted from /jobs/new/, followed live by static/js/jobs.js,
then its class counts and downloads once the page reloads itself at the end."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from classifier.models import Job
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_submit_a_zip_and_watch_it_finish(live_server, page, log_in, user, tmp_path):
    archive = tmp_path / "survey.zip"
    archive.write_bytes(make_zip([(f"north/g{i}.png", data) for i, data in enumerate(distinct_images(5))]))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, "reader", "reader-pass-123", next_url="/jobs/new/")
    page.get_by_label("A .zip of images").set_input_files(str(archive))
    page.get_by_role("button", name="Start the job").click()
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    job = Job.objects.get()
    expect(page.locator("#job-status")).to_have_text("queued")
    expect(page.locator("#job-progress")).to_have_attribute("max", "5")

    # No worker here: the chunks run in this process, and the page's script notices by itself.
    run_chunks_inline(job)
    expect(page.locator("#class-counts")).to_be_visible(timeout=15_000)
    expect(page.locator("#job-results-csv")).to_be_visible()
    counts = page.locator("#class-counts td.prob-value").all_inner_texts()
    assert sum(int(count) for count in counts) == 5
    assert errors == []
