"""The classes page (/classes/): public, one card per Galaxy10 class."""

from __future__ import annotations

import pytest
from django.urls import reverse

from classifier.core.galaxy10 import GALAXY10_CLASSES, GROUPS

pytestmark = pytest.mark.django_db


def test_classes_page_describes_all_ten_classes_by_group(client):
    response = client.get(reverse("classifier:classes"))

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="class-card"') == 10
    for galaxy_class in GALAXY10_CLASSES:
        assert f'id="class-{galaxy_class.index}"' in html
        assert galaxy_class.name in html
        assert galaxy_class.description in html
    for group in GROUPS:
        assert group.capitalize() in html
