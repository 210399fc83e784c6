"""The Prediction admin: staff view, delete and export; nobody adds or edits."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from classifier.admin import PredictionAdmin
from classifier.core.galaxy10 import CLASS_NAMES
from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:classifier_prediction_changelist")


def change_url(pk):
    return reverse("admin:classifier_prediction_change", args=[pk])


def test_changelist_shows_thumbnails(admin_client):
    prediction = PredictionFactory(original_filename="m51.png")
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert f'src="/media/{prediction.image.name}"'.encode() in response.content
    assert b'alt="m51.png"' in response.content


def test_non_staff_cannot_open_the_admin(client, user):
    client.force_login(user)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    ("query", "matching"),
    [
        ({"source__exact": "cli"}, {"cli"}),
        ({"model_version": "v2"}, {"v2"}),
        ({"q": "needle"}, {"needle"}),
    ],
)
def test_filters_and_search(admin_client, query, matching):
    hit = PredictionFactory(source="cli", model_version="v2", original_filename="needle.png")
    PredictionFactory(source="web", model_version="v1", original_filename="hay.png")
    response = admin_client.get(CHANGELIST, query)
    assert response.status_code == 200
    assert [p.pk for p in response.context["cl"].result_list] == [hit.pk]


def test_class_filter_and_sha_search(admin_client):
    first = PredictionFactory()
    PredictionFactory.create_batch(5)
    by_class = admin_client.get(CHANGELIST, {"class_index__exact": first.class_index})
    assert first in by_class.context["cl"].result_list
    assert all(p.class_index == first.class_index for p in by_class.context["cl"].result_list)
    by_sha = admin_client.get(CHANGELIST, {"q": first.sha256})
    assert list(by_sha.context["cl"].result_list) == [first]


def test_date_hierarchy(admin_client):
    prediction = PredictionFactory()
    response = admin_client.get(CHANGELIST, {"created_at__year": prediction.created_at.year})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [prediction]


def test_no_add(admin_client):
    assert admin_client.get(reverse("admin:classifier_prediction_add")).status_code == 403
    assert not PredictionAdmin(Prediction, site).has_add_permission(None)


def test_detail_is_read_only_with_a_large_preview(admin_client):
    prediction = PredictionFactory(original_filename="orig.png")
    response = admin_client.get(change_url(prediction.pk))
    assert response.status_code == 200
    assert b'class="prediction-preview"' in response.content
    assert b"css/admin.css" in response.content
    assert b'name="original_filename"' not in response.content  # no editable inputs
    response = admin_client.post(change_url(prediction.pk), {"original_filename": "edited.png"})
    assert response.status_code == 403
    prediction.refresh_from_db()
    assert prediction.original_filename == "orig.png"


def test_delete_removes_the_image(admin_client, media_root, django_capture_on_commit_callbacks):
    prediction = PredictionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:classifier_prediction_delete", args=[prediction.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert not Prediction.objects.exists()
    assert media_files(media_root) == []


def test_bulk_delete_action_removes_the_images(admin_client, media_root, django_capture_on_commit_callbacks):
    doomed = PredictionFactory.create_batch(3)
    keep = PredictionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST,
            {"action": "delete_selected", "_selected_action": [p.pk for p in doomed], "post": "yes"},
        )
    assert response.status_code == 302
    assert list(Prediction.objects.all()) == [keep]
    assert media_files(media_root) == [media_root / keep.image.name]


def test_csv_export_action(admin_client):
    chosen = PredictionFactory.create_batch(2)
    PredictionFactory()
    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [p.pk for p in chosen]}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(int(r["id"]) for r in rows) == sorted(p.pk for p in chosen)
    assert rows[0]["sha256"] in {p.sha256 for p in chosen}


def test_the_admin_is_titled_with_the_projects_name(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Django administration" not in html
    assert "Galaxy Classifier administration" in html
    assert "<title>Site administration | Galaxy Classifier</title>" in html


def test_the_detail_shows_the_class_once_and_probabilities_to_three_decimals(admin_client):
    probabilities = [0.012345678901234567] * 9 + [1 - 9 * 0.012345678901234567]
    prediction = PredictionFactory(
        probabilities=probabilities,
        class_index=9,
        class_name="Edge-on with Bulge",
        confidence=probabilities[9],
    )
    html = admin_client.get(change_url(prediction.pk)).content.decode()
    labels = re.findall(r"<label>(.*?):?</label>", html)
    assert "Class name" not in labels
    readonly = re.findall(r'<div class="readonly">(.*?)</div>', html, re.S)
    assert readonly.count("Edge-on with Bulge") == 1
    assert "0.012345678901234567" not in html
    assert "0.01234567890123" not in html
    items = re.findall(r'<ol class="probability-list" start="0">(.*?)</ol>', html, re.S)
    assert re.findall(r"<li>(.*?)</li>", items[0]) == [
        *(f"{name}: 0.012" for name in CLASS_NAMES[:9]),
        "Edge-on with Bulge: 0.889",
    ]


def test_the_model_version_column_may_wrap(admin_client, settings):
    # The browser check of the whole table's width is in browser/test_page_layout.py.
    # The changelist's long model versions wrap in their column rather than being clipped.
    PredictionFactory(model_version="2026.11.26-effnetlite0-128px-float16-c6710a4c")
    html = admin_client.get(CHANGELIST).content.decode()
    assert 'class="field-model_version"' in html
    assert "css/admin.css" in html
    stylesheet = (Path(settings.BASE_DIR) / "static" / "css" / "admin.css").read_text()
    assert re.search(r"\.field-model_version\s*\{[^}]*overflow-wrap:\s*anywhere", stylesheet)
