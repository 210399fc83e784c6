"""schemathesis against the OpenAPI schema: no 5xx, and every response conforms to the schema.

The generated requests go over HTTP to a live server (pytest-django's live_server, a real
WSGI server on a local port), as a staff user with an API token, so every operation
(including deletes) is reached through the whole middleware stack and the error handlers.
The schema the cases are drawn from is the one /api/schema/ serves, generated here at
collection time (the server only exists once a test runs).
"""

import json

import jsonschema
import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def load_schema(mode):
    raw = SchemaGenerator().get_schema(request=None, public=True)
    config = schemathesis.Config()
    config.projects.default.generation.update(modes=[mode], database="none")
    return schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)), config=config)


schema = load_schema(GenerationMode.POSITIVE)
negative_schema = load_schema(GenerationMode.NEGATIVE)


@pytest.fixture
def staff_token(staff):
    return Token.objects.create(user=staff).key


@pytest.fixture
def sky(cutout_server, settings):
    """Positions (ra, dec) are fetched from the stand-in cutout service, which answers every
    one with an image: an unreachable survey (502) is tested in test_api_predictions_position."""
    settings.CUTOUT_URL = cutout_server.template(mode="clean")
    return cutout_server


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_valid_requests_get_responses_that_conform(case, live_server, staff_token, sky):
    case.call_and_validate(
        base_url=live_server.url, headers={"Authorization": f"Token {staff_token}"}, checks=CHECKS
    )


@negative_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_invalid_requests_never_get_a_server_error(case, live_server, staff_token, sky):
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Token {staff_token}"},
        checks=[not_a_server_error],
    )


@pytest.mark.parametrize("pk", ["-1", "0", "99999999999999999999999"])
def test_ids_outside_the_range_are_a_json_404(user_client, pk):
    response = user_client.get(f"/api/predictions/{pk}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


# --- the cases the issue named, against the documented schema ---------------------------------


@pytest.fixture
def openapi(live_server):
    return requests.get(f"{live_server.url}/api/schema/?format=json", timeout=30).json()


def assert_matches_documented(openapi, path, method, response):
    """The response's status is documented for the operation and its JSON body matches it."""
    documented = openapi["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (response.status_code, sorted(documented))
    body_schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    assert response.headers["Content-Type"].startswith("application/json")
    # The components travel with the schema so its $refs resolve.
    jsonschema.validate(response.json(), {**body_schema, "components": openapi["components"]})


def test_a_non_numeric_prediction_id_is_a_documented_json_404(live_server, openapi, staff_token):
    response = requests.get(
        f"{live_server.url}/api/predictions/abc/",
        headers={"Authorization": f"Token {staff_token}"},
        timeout=30,
    )
    assert response.status_code == 404
    assert_matches_documented(openapi, "/api/predictions/{id}/", "get", response)


def test_an_unknown_api_path_is_json_not_a_page(live_server):
    response = requests.get(f"{live_server.url}/api/no-such-thing/", timeout=30)
    assert response.status_code == 404
    assert response.json() == {"detail": "not found"}


def test_an_unknown_format_is_a_documented_406_and_nothing_is_saved(
    live_server, openapi, staff_token, image_bytes
):
    from classifier.models import Prediction

    response = requests.post(
        f"{live_server.url}/api/predictions/?format=AAA",
        headers={"Authorization": f"Token {staff_token}"},
        files={"image": ("a.png", image_bytes(), "image/png")},
        timeout=30,
    )
    assert response.status_code == 406
    assert "json" in response.json()["detail"]
    assert_matches_documented(openapi, "/api/predictions/", "post", response)
    assert not Prediction.objects.exists()


def test_bulk_delete_with_a_body_that_is_not_utf8_is_a_documented_400(live_server, openapi, staff_token):
    from classifier.models import Prediction
    from classifier.tests.factories import PredictionFactory

    PredictionFactory()
    response = requests.post(
        f"{live_server.url}/api/predictions/bulk-delete/",
        headers={"Authorization": f"Token {staff_token}", "Content-Type": "application/json"},
        data=b'{"source": "\xff\xfe"}',
        timeout=30,
    )
    assert response.status_code == 400
    assert_matches_documented(openapi, "/api/predictions/bulk-delete/", "post", response)
    assert Prediction.objects.count() == 1


def test_bulk_delete_field_errors_still_match_the_documented_400(live_server, openapi, staff_token):
    response = requests.post(
        f"{live_server.url}/api/predictions/bulk-delete/",
        headers={"Authorization": f"Token {staff_token}"},
        json={"source": "nowhere"},
        timeout=30,
    )
    assert response.status_code == 400
    assert "source" in response.json()
    assert_matches_documented(openapi, "/api/predictions/bulk-delete/", "post", response)


def test_the_api_root_lists_the_resources(live_server, openapi):
    response = requests.get(f"{live_server.url}/api/", headers={"Accept": "application/json"}, timeout=30)
    assert response.status_code == 200
    assert_matches_documented(openapi, "/api/", "get", response)
    body = response.json()
    assert body["predictions"] == f"{live_server.url}/api/predictions/"
    assert json.loads(requests.get(body["model"], timeout=30).text)["model_version"]
