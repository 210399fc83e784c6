"""The result page's Galaxy Zoo section and the admin's table (issue 18 item 4): the four groups
as bars, the main questions as a tree with the likeliest path marked in text, in English and
Spanish; only the groups and a note for a model without vote fractions; nothing for old rows."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from classifier.templatetags.galaxy_zoo import galaxy_zoo_tree
from classifier.tests.factories import PredictionFactory
from classifier.tests.galaxy_zoo_support import GROUPS_ONLY, WITH_VOTES

pytestmark = pytest.mark.django_db


@pytest.fixture
def spanish_client(client):
    client.cookies["django_language"] = "es"
    return client


def _page(client, user, galaxy_zoo) -> str:
    prediction = PredictionFactory(galaxy_zoo=galaxy_zoo)
    client.force_login(user)
    response = client.get(prediction.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def _section(html: str) -> str:
    match = re.search(r'<section class="galaxy-zoo".*?</section>', html, re.DOTALL)
    assert match, "no Galaxy Zoo section"
    return match.group(0)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_tree_follows_the_decision_tree_and_marks_the_likeliest_path():
    [first, merging] = galaxy_zoo_tree(WITH_VOTES)
    assert (first["key"], first["on_branch"], merging["key"], merging["on_branch"]) == (
        "smooth-or-featured",
        True,
        "merging",
        True,
    )
    assert [a["key"] for a in first["answers"] if a["is_top"]] == ["featured-or-disk"]
    rounded, edge_on = first["children"]
    # Asked after "smooth", which is not the likeliest answer: shown, off the path.
    assert (rounded["key"], rounded["on_branch"], rounded["condition"]) == ("how-rounded", False, "Smooth")
    assert (edge_on["key"], edge_on["on_branch"]) == ("disk-edge-on", True)
    assert [(node["key"], node["on_branch"]) for node in edge_on["children"]] == [
        ("bar", True),
        ("has-spiral-arms", True),
        ("bulge-size", True),
    ]
    assert galaxy_zoo_tree(GROUPS_ONLY) == []
    assert galaxy_zoo_tree(None) == []


def test_result_page_shows_groups_and_tree(client, user):
    section = _section(_page(client, user, WITH_VOTES))
    text = _text(section)
    assert 'data-group="face_on_disk"' in section
    assert "Face-on disk top 70.0%" in text
    assert "Smooth, featured, or an artifact?" in text
    assert "Features or a disk 75% likeliest" in text
    assert "If “Features or a disk”: Is it a disk seen edge-on?" in text
    assert "If “No”: Is there a bar?" in text
    assert "Strong bar 60% likeliest" in text
    assert "Is it merging or disturbed?" in text
    # The path is said in words, not only drawn.
    assert text.count("(on the likeliest path)") == 6
    assert 'class="gz-question on-branch" data-question="bar"' in section
    assert 'class="gz-question" data-question="how-rounded"' in section
    assert "does not predict Galaxy Zoo vote fractions" not in text


def test_without_vote_fractions_only_the_groups_and_a_note(client, user):
    section = _section(_page(client, user, GROUPS_ONLY))
    assert 'id="galaxy-zoo-groups"' in section
    assert 'id="galaxy-zoo-tree"' not in section
    assert "This model does not predict Galaxy Zoo vote fractions" in _text(section)


def test_old_predictions_have_no_section(client, user):
    assert 'class="galaxy-zoo"' not in _page(client, user, None)


def test_in_spanish(spanish_client, user):
    text = _text(_section(_page(spanish_client, user, WITH_VOTES)))
    assert "Como respondería Galaxy Zoo" in text
    assert "Disco de frente más probable 70,0%" in text
    assert "¿Suave, con estructura o un artefacto?" in text
    assert "Si «Con estructura o disco»: ¿Es un disco visto de canto?" in text
    assert "Barra fuerte 60% la más probable" in text
    assert "(en el camino más probable)" in text
    text = _text(_section(_page(spanish_client, user, GROUPS_ONLY)))
    assert "Este modelo no predice las fracciones de votos de Galaxy Zoo" in text


def test_admin_detail_shows_the_numbers(admin_client):
    prediction = PredictionFactory(galaxy_zoo=WITH_VOTES)
    html = admin_client.get(
        reverse("admin:classifier_prediction_change", args=[prediction.pk])
    ).content.decode()
    table = re.search(r'<table class="galaxy-zoo-table">.*?</table>', html, re.DOTALL).group(0)
    text = _text(table)
    assert "Face-on disk 0.700" in text
    assert "Is there a bar? Strong bar 0.600" in text
    assert "Is it merging or disturbed? Merging 0.050" in text
    old = PredictionFactory()
    html = admin_client.get(reverse("admin:classifier_prediction_change", args=[old.pk])).content.decode()
    assert "galaxy-zoo-table" not in html
