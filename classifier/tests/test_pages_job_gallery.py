"""/jobs/<id>/galaxies/: the job's galaxies as a gallery, filtered by class and confidence,
sorted and paginated, in English and Spanish, for the job's owner and staff only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from classifier.jobs import services as job_services
from classifier.jobs import views as job_views
from classifier.jobs.submissions import submission_from_uploads
from classifier.models import Job, Prediction
from classifier.tests.jobs_support import distinct_images, make_zip, run_chunks_inline, zip_upload

pytestmark = pytest.mark.django_db

ITEM = re.compile(r'<li class="grid-card[^"]*" data-prediction-id="(\d+)" data-class-index="(\d+)">')


@pytest.fixture
def job(user, django_capture_on_commit_callbacks) -> Job:
    """Five real images classified by the shipped model, a catalogue naming four, and a file
    that is not an image (a failed member, which the gallery leaves out)."""
    images = distinct_images(5)
    entries = [(f"field/g{index}.png", data) for index, data in enumerate(images)]
    catalogue = "file,objid,ra,dec\n" + "".join(
        f"field/g{index}.png,J{index:03d},{10 + index},{-5 + index}\n" for index in range(4)
    )
    entries += [("notes.txt", b"not an image"), ("catalogue.csv", catalogue.encode())]
    submission = submission_from_uploads(archive=zip_upload(make_zip(entries)))
    with django_capture_on_commit_callbacks(execute=True):
        created = job_services.job_create(
            name=submission.name, members=submission.members, catalogue=submission.catalogue, user=user
        )
    return run_chunks_inline(created)


def _url(job: Job) -> str:
    return reverse("classifier:job-gallery", args=[job.pk])


def _items(response) -> list[tuple[int, int]]:
    assert response.status_code == 200, response.content[:300]
    return [(int(pk), int(index)) for pk, index in ITEM.findall(response.content.decode())]


def test_owner_sees_every_classified_galaxy_with_thumbnail_class_confidence_and_id(job, client, user):
    client.force_login(user)
    response = client.get(_url(job))
    html = response.content.decode()
    items = _items(response)
    predictions = {p.pk: p for p in Prediction.objects.filter(job=job).select_related("job_member")}
    assert len(predictions) == 5
    assert [pk for pk, _ in items] == sorted(predictions, key=lambda pk: predictions[pk].job_member.index)
    for pk, class_index in items:
        prediction = predictions[pk]
        assert class_index == prediction.class_index
        assert f'src="{prediction.image.url}"' in html
    # The thumbnails are described for screen readers: id, member name, class and confidence.
    gallery = html[html.index('id="gallery"') :]
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', gallery)
    assert len(alts) == 5
    assert all(alt.strip() for alt in alts)
    first = predictions[items[0][0]]
    assert f"Galaxy J000 (field/g0.png), classified as {first.class_name}" in alts[0]
    assert "%" in alts[0]
    assert "objid: J000" in html
    assert "field/g4.png" in html  # no catalogue row: named by its file
    assert "notes.txt" not in html
    # The thumbnails load for the owner.
    assert client.get(first.image.url).status_code == 200


def test_only_the_owner_and_staff_see_it(job, client, django_user_model, staff):
    response = client.get(_url(job))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
    other = django_user_model.objects.create_user(username="other", password="other-pass-123")
    client.force_login(other)
    assert client.get(_url(job)).status_code == 404
    image_url = Prediction.objects.filter(job=job).first().image.url
    assert client.get(image_url).status_code == 404
    client.force_login(staff)
    assert len(_items(client.get(_url(job)))) == 5


def test_filter_by_class_and_confidence(job, client, user):
    client.force_login(user)
    predictions = list(Prediction.objects.filter(job=job))
    some_class = predictions[0].class_index
    items = _items(client.get(_url(job), {"class_index": some_class}))
    assert {pk for pk, _ in items} == {p.pk for p in predictions if p.class_index == some_class}
    threshold = sorted(p.confidence for p in predictions)[2]
    items = _items(client.get(_url(job), {"confidence_min": f"{threshold:.6f}"}))
    assert {pk for pk, _ in items} == {p.pk for p in predictions if p.confidence >= round(threshold, 6)}
    items = _items(client.get(_url(job), {"confidence_max": "0"}))
    assert items == []
    html = client.get(_url(job), {"confidence_max": "0"}).content.decode()
    assert "No galaxy matches these filters." in html


def test_sorted_by_confidence_class_and_name(job, client, user):
    client.force_login(user)
    predictions = {p.pk: p for p in Prediction.objects.filter(job=job).select_related("job_member")}
    ascending = [pk for pk, _ in _items(client.get(_url(job), {"ordering": "confidence"}))]
    assert [predictions[pk].confidence for pk in ascending] == sorted(
        p.confidence for p in predictions.values()
    )
    descending = [pk for pk, _ in _items(client.get(_url(job), {"ordering": "-confidence"}))]
    assert [predictions[pk].confidence for pk in descending] == sorted(
        (p.confidence for p in predictions.values()), reverse=True
    )
    by_class = [index for _, index in _items(client.get(_url(job), {"ordering": "class"}))]
    assert by_class == sorted(by_class)
    by_name = [pk for pk, _ in _items(client.get(_url(job), {"ordering": "-name"}))]
    assert [predictions[pk].job_member.path for pk in by_name] == [
        f"field/g{i}.png" for i in range(4, -1, -1)
    ]


def test_paginated(job, client, user, monkeypatch):
    monkeypatch.setattr(job_views, "GALLERY_PAGE_SIZE", 2)
    client.force_login(user)
    pages = [_items(client.get(_url(job), {"page": page, "ordering": "-confidence"})) for page in (1, 2, 3)]
    assert [len(page) for page in pages] == [2, 2, 1]
    seen = [pk for page in pages for pk, _ in page]
    assert sorted(seen) == sorted(Prediction.objects.filter(job=job).values_list("pk", flat=True))
    html = client.get(_url(job), {"page": 2, "ordering": "-confidence"}).content.decode()
    # The page links keep the ordering.
    assert "ordering=-confidence&amp;page=3" in html or "page=3&amp;ordering=-confidence" in html


@pytest.mark.parametrize(
    "params", [{"confidence_min": "2"}, {"class_index": "12"}, {"ordering": "sha256"}, {"colour": "red"}]
)
def test_bad_or_unknown_parameters_are_a_400_page(job, client, user, params):
    client.force_login(user)
    response = client.get(_url(job), params)
    assert response.status_code == 400
    html = response.content.decode()
    assert "data-prediction-id" not in html
    if "colour" in params:
        alert = re.search(r'id="gallery-unknown">([^<]*)<', html).group(1)
        assert "colour" in alert
        assert "class_index, confidence_max, confidence_min, ordering, page" in alert


def test_in_spanish(job, client, user):
    client.force_login(user)
    html = client.get(_url(job), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert f"Galaxias del trabajo {job.pk}" in html
    assert "Confianza mínima" in html
    assert "clasificada como" in html
    assert "Orden de envío" in html


def test_reached_from_the_job_page(job, client, user):
    client.force_login(user)
    html = client.get(job.get_absolute_url()).content.decode()
    assert f'href="{_url(job)}"' in html


def test_queries_do_not_grow_with_the_page(job, client, user, django_assert_max_num_queries, monkeypatch):
    client.force_login(user)
    monkeypatch.setattr(job_views, "GALLERY_PAGE_SIZE", 1)
    with django_assert_max_num_queries(20) as one:
        client.get(_url(job))
    monkeypatch.setattr(job_views, "GALLERY_PAGE_SIZE", 5)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(_items(client.get(_url(job)))) == 5
