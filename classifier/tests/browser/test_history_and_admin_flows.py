"""The audit log in a real browser: who may read it, filtering it, and deleting as staff.

- anonymous visitor: refused the history (sent to the login page);
- reader (logged-in, not staff): reads, filters, searches and sorts the history;
- staff: deletes a record on the site or in the admin, which also removes its stored image.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import media_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reader():
    """Logged-in, not staff: may read and filter the history, may not delete."""
    return get_user_model().objects.create_user(username="astronomer", password="m31-andromeda-9")


def test_anonymous_visitor_is_refused_the_history(live_server, page):
    PredictionFactory(original_filename="secret.png")

    page.goto(f"{live_server.url}/history/")

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/history/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.get_by_text("secret.png")).to_have_count(0)


def test_filter_search_and_sort_history(live_server, page, log_in, reader):
    PredictionFactory(original_filename="m51-whirlpool.png", source=Prediction.Source.WEB, confidence=0.61)
    PredictionFactory(original_filename="m51-deep.png", source=Prediction.Source.WEB, confidence=0.97)
    PredictionFactory(original_filename="m51-api.png", source=Prediction.Source.API)
    PredictionFactory(original_filename="andromeda.png", source=Prediction.Source.WEB)
    log_in(page, "astronomer", "m31-andromeda-9", next_url="/history/")
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(4)

    page.get_by_label("File name contains").fill("m51")
    page.get_by_label("Source").select_option("web")
    page.get_by_role("button", name="Apply").click()

    expect(page).to_have_url(re.compile(r"filename=m51.*source=web|source=web.*filename=m51"))
    expect(rows).to_have_count(2)
    expect(page.locator("#history-count")).to_contain_text("2 predictions")

    page.get_by_role("link", name=re.compile("^Confidence")).click()
    expect(page).to_have_url(re.compile(r"ordering=-confidence"))
    expect(page).to_have_url(re.compile(r"filename=m51"))
    expect(rows.first.locator(".file-name")).to_have_text("m51-deep.png")
    expect(page.get_by_label("File name contains")).to_have_value("m51")

    page.reload()
    expect(rows).to_have_count(2)
    csv_href = page.locator("#csv-export").get_attribute("href")
    assert "filename=m51" in csv_href
    assert "source=web" in csv_href


def test_staff_deletes_a_record_in_the_admin(live_server, page, curator, media_root):
    doomed = PredictionFactory(original_filename="duplicate-upload.png")
    kept = PredictionFactory(original_filename="keeper.png")
    assert len(media_files(media_root)) == 2

    page.goto(f"{live_server.url}/admin/login/?next=/admin/classifier/prediction/")
    page.get_by_label("Username").fill("curator")
    page.get_by_label("Password").fill("ngc-224-curator")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/classifier/prediction/$"))

    page.get_by_role("link", name=re.compile(r"duplicate-upload\.png")).first.click()
    page.get_by_role("link", name=re.compile("Delete")).click()
    page.get_by_role("button", name=re.compile(r"Yes, I.m sure")).click()

    # The admin returns to its index or the list, depending on the change permission it grants.
    page.wait_for_url(re.compile(r"/admin/(classifier/prediction/)?$"))
    expect(page.locator(".messagelist")).to_contain_text("deleted")
    assert list(Prediction.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not Prediction.objects.filter(pk=doomed.pk).exists()
    assert len(media_files(media_root)) == 1


def test_staff_delete_on_a_page_of_the_site(live_server, page, log_in, curator, media_root):
    doomed = PredictionFactory(original_filename="duplicate-upload.png")
    kept = PredictionFactory(original_filename="keeper.png")
    log_in(page, "curator", "ngc-224-curator", next_url=doomed.get_absolute_url())

    page.get_by_role("link", name=re.compile("Delete")).click()
    # The confirmation is a page of the site (its header and styles), not the admin's.
    expect(page).to_have_url(re.compile(rf"/predictions/{doomed.pk}/delete/$"))
    expect(page.locator(".site-header")).to_be_visible()
    expect(page.locator("#delete-question")).to_contain_text("duplicate-upload.png")
    page.get_by_role("button", name="Yes, delete it").click()

    page.wait_for_url(re.compile(r"/history/$"))
    expect(page.locator(".messages")).to_contain_text("duplicate-upload.png")
    assert list(Prediction.objects.values_list("pk", flat=True)) == [kept.pk]
    assert len(media_files(media_root)) == 1
