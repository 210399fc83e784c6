"""The REST API's `galaxy_zoo` object (issue 18 item 4): in every prediction it returns, null for
predictions made before it existed, and described key by key in the OpenAPI schema."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from classifier.core.galaxy_zoo import GROUP_KEYS, MAIN_QUESTIONS, QUESTIONS
from classifier.tests.factories import PredictionFactory
from classifier.tests.galaxy_zoo_support import GROUPS_ONLY, WITH_VOTES

pytestmark = pytest.mark.django_db


def test_detail_gives_it_as_stored(user_client):
    prediction = PredictionFactory(galaxy_zoo=WITH_VOTES)
    body = user_client.get(reverse("api:prediction-detail", args=[prediction.pk])).json()
    assert body["galaxy_zoo"] == WITH_VOTES


def test_list_gives_it_in_each_result_and_null_for_old_rows(user_client):
    old = PredictionFactory()
    new = PredictionFactory(galaxy_zoo=GROUPS_ONLY)
    results = {item["id"]: item for item in user_client.get(reverse("api:prediction-list")).json()["results"]}
    assert results[old.pk]["galaxy_zoo"] is None
    assert results[new.pk]["galaxy_zoo"] == {"groups": GROUPS_ONLY["groups"], "questions": None}


def test_results_json_download_gives_it(client, user):
    prediction = PredictionFactory(galaxy_zoo=WITH_VOTES)
    client.force_login(user)
    response = client.get(reverse("classifier:results-json"), {"ids": str(prediction.pk)})
    [item] = response.json()
    assert item["galaxy_zoo"] == WITH_VOTES


def test_schema_describes_it_nullable_in_every_prediction(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out))
    schemas = yaml.safe_load(out.read_text())["components"]["schemas"]
    for component in ("PredictionOutput", "PredictionDetailOutput", "JobResult"):
        galaxy_zoo = schemas[component]["properties"]["galaxy_zoo"]
        assert galaxy_zoo["nullable"] is True, component
        assert list(galaxy_zoo["properties"]["groups"]["properties"]) == list(GROUP_KEYS)
        questions = galaxy_zoo["properties"]["questions"]
        assert questions["nullable"] is True
        assert list(questions["properties"]) == list(MAIN_QUESTIONS)
        for question in MAIN_QUESTIONS:
            assert list(questions["properties"][question]["properties"]) == list(QUESTIONS[question])
