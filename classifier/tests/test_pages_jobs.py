"""The job pages: submit at /jobs/new/, follow at /jobs/<id>/ (live progress from a static script)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from classifier.models import Job
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(reverse("classifier:job-new"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_submit_an_archive_and_follow_it(client, user, django_capture_on_commit_callbacks):
    client.force_login(user)
    archive = make_zip([(f"f/g{i}.png", data) for i, data in enumerate(distinct_images(3))])
    response = client.post(
        reverse("classifier:job-new"), {"archive": SimpleUploadedFile("survey.zip", archive)}
    )
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()

    page = client.get(job.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="job-progress"' in html
    assert f'data-status-url="{reverse("api:job-detail", args=[job.pk])}"' in html
    # The progress script is a static file; the page has no inline script (strict CSP).
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "js/jobs.js" in html
    assert client.get("/static/js/jobs.js").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        run_chunks_inline(job)
    html = client.get(job.get_absolute_url()).content.decode()
    assert 'id="class-counts"' in html
    assert reverse("api:job-results-csv", args=[job.pk]) in html
    assert "js/jobs.js" not in html


def test_refused_archive_shows_the_reason_and_saves_nothing(client, user):
    client.force_login(user)
    response = client.post(
        reverse("classifier:job-new"), {"archive": SimpleUploadedFile("e.zip", make_zip([]))}
    )
    assert response.status_code == 400
    assert "has no files to classify" in response.content.decode()
    assert Job.objects.count() == 0


def test_cancel_from_the_page(client, user):
    client.force_login(user)
    files = [SimpleUploadedFile(f"g{i}.png", data) for i, data in enumerate(distinct_images(2))]
    client.post(reverse("classifier:job-new"), {"images": files})
    job = Job.objects.get()
    response = client.post(reverse("classifier:job-cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_someone_elses_job_page_is_404(client, user, django_user_model):
    other = django_user_model.objects.create_user(username="other", password="other-pass-123")
    client.force_login(other)
    files = [SimpleUploadedFile("g.png", distinct_images(1)[0])]
    client.post(reverse("classifier:job-new"), {"images": files})
    job = Job.objects.get()
    client.force_login(user)
    assert client.get(job.get_absolute_url()).status_code == 404


def test_admin_lists_jobs(admin_client, user):
    client_job = Job.objects.create(name="survey.zip", user=user, total=3)
    response = admin_client.get(reverse("admin:classifier_job_changelist"))
    assert response.status_code == 200
    assert "survey.zip" in response.content.decode()
    assert admin_client.get(reverse("admin:classifier_job_change", args=[client_job.pk])).status_code == 200


def test_admin_job_columns_are_named_for_what_they_show(admin_client, user):
    Job.objects.create(name="survey.zip", user=user, total=3)
    html = admin_client.get(reverse("admin:classifier_job_changelist")).content.decode()
    headers = re.findall(r'column-(\w+)[^"]*">.*?<div class="text">(?:<a[^>]*>|<span>)([^<]+)<', html, re.S)
    named = {column: label.strip().lower() for column, label in headers}
    assert named["progress"] == "progress"
    assert named["created"] == Job._meta.get_field("created_at").verbose_name.lower()
