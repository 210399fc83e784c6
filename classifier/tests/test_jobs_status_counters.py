"""A job's status line, its counters and its results agree (issue 20, "What a new user hit").

A job with failed members said "succeeded · 4/4" on the jobs page; a job cancelled part-way
said done = 406 while its results CSV held 470 classified rows. Jobs run on a real Celery
worker (Redis) here, and once in-process through the same service with the count that a chunk
makes after its commit held back, which is the window a cancel fell into.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter

import pytest
from django.urls import reverse

from classifier.jobs import chunks
from classifier.jobs import services as job_services
from classifier.models import Job, JobMember, Prediction
from classifier.tests.jobs_support import distinct_images, make_zip, submit_archive, wait_until_ended
from classifier.tests.workers import Worker, wait_for

JOB_TIMEOUT_S = 120
# About 70 ms of decoding each here, so a job of 40 is still running when it is cancelled.
SLOW_IMAGE_SIZE = (1000, 1000)


@pytest.fixture
def redis_worker(redis_celery, settings, tmp_path):
    settings.JOB_CHUNK_SIZE = 4
    worker = Worker(name="counters", broker_url=redis_celery, log_dir=tmp_path).wait_ready()
    yield worker
    worker.stop()


def submit(user, entries: list[tuple[str, bytes]]) -> Job:
    return submit_archive(user, make_zip(entries))


def csv_statuses(client, job: Job) -> Counter:
    response = client.get(reverse("api:job-results-csv", args=[job.pk]))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return Counter(row["status"] for row in csv.DictReader(io.StringIO(text)))


def assert_counters_match_members(job: Job) -> Counter:
    states = Counter(JobMember.objects.filter(job=job).values_list("status", flat=True))
    assert job.done == states[JobMember.Status.CLASSIFIED] == Prediction.objects.filter(job=job).count()
    assert job.failed == states[JobMember.Status.FAILED]
    return states


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_failed_members_are_counted_on_every_page(redis_worker, user, client):
    good = distinct_images(3)
    job = submit(
        user, [*((f"g{i}.png", data) for i, data in enumerate(good)), ("broken.png", b"not an image")]
    )
    wait_until_ended(job)
    assert job.status == Job.Status.SUCCEEDED
    assert (job.done, job.failed, job.total) == (3, 1, 4)
    assert_counters_match_members(job)

    client.force_login(user)
    # The jobs list said "succeeded · 4/4" here.
    listing = client.get(reverse("classifier:job-new")).content.decode()
    assert "succeeded · 3 classified, 1 failed, of 4" in listing
    assert "4/4" not in listing
    page = client.get(job.get_absolute_url()).content.decode()
    assert "3 classified, 1 failed, of 4" in page
    api = client.get(reverse("api:job-detail", args=[job.pk])).json()
    assert (api["status"], api["done"], api["failed"], api["total"]) == ("succeeded", 3, 1, 4)
    assert csv_statuses(client, job) == {"classified": 3, "failed": 1}

    client.cookies["django_language"] = "es"
    listing = client.get(reverse("classifier:job-new"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "3 clasificadas, 1 fallidas, de 4" in listing


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancelled_part_way_counts_what_its_results_hold(redis_worker, user, client):
    job = submit(
        user, [(f"g{i:02d}.png", d) for i, d in enumerate(distinct_images(40, size=SLOW_IMAGE_SIZE))]
    )
    wait_for(lambda: Job.objects.get(pk=job.pk).done >= 4, timeout=JOB_TIMEOUT_S, what="the first chunk")
    assert job_services.job_cancel(job=job)
    time.sleep(2)  # the worker goes through the chunks left, and records nothing
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    states = assert_counters_match_members(job)
    assert 0 < job.done < job.total
    client.force_login(user)
    assert csv_statuses(client, job) == {k: v for k, v in states.items() if v}
    api = client.get(reverse("api:job-detail", args=[job.pk])).json()
    assert (api["done"], api["failed"]) == (job.done, job.failed)


@pytest.mark.django_db(transaction=True)
def test_cancel_between_a_chunks_commit_and_its_count(user, monkeypatch, settings):
    """The interleaving that gave done = 406 beside 470 classified rows, made certain: a chunk
    commits its members, and the job is cancelled before that chunk counts them."""
    settings.JOB_CHUNK_SIZE = 4
    job = submit(user, [(f"g{i}.png", d) for i, d in enumerate(distinct_images(8))] + [("bad.png", b"x")])
    job_services.job_chunk_process(job_id=job.pk, start=0, stop=4)
    job.refresh_from_db()
    assert (job.done, job.failed) == (4, 0)
    monkeypatch.setattr(chunks, "refresh_progress", lambda job_id: None)
    job_services.job_chunk_process(job_id=job.pk, start=4, stop=8)
    job.refresh_from_db()
    assert job.done == 4  # the second chunk's count has not run yet
    assert job_services.job_cancel(job=job)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (Job.Status.CANCELLED, 8, 0)
    assert_counters_match_members(job)


@pytest.mark.django_db(transaction=True)
def test_a_failed_job_keeps_the_counts_of_its_members(user, monkeypatch, settings):
    settings.JOB_CHUNK_SIZE = 2
    job = submit(
        user, [("bad.png", b"x"), ("g.png", distinct_images(1)[0]), ("h.png", distinct_images(2)[1])]
    )
    monkeypatch.setattr(chunks, "refresh_progress", lambda job_id: None)
    job_services.job_chunk_process(job_id=job.pk, start=0, stop=2)
    job_services.job_fail(job_id=job.pk, reason="the job queue is unavailable")
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (Job.Status.FAILED, 1, 1)
