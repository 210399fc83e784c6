"""schemathesis against the OpenAPI schema: no 5xx, and every response conforms to the schema.

The generated requests go in-process to Django's WSGI handler (no network), as a
staff user with an API token, so every operation (including deletes) is reached.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
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


def load_schema(mode):
    config = schemathesis.Config()
    config.projects.default.generation.update(modes=[mode], database="none")
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler(), config=config)


schema = load_schema(GenerationMode.POSITIVE)
invalid_requests = load_schema(GenerationMode.NEGATIVE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def staff_token(staff):
    return Token.objects.create(user=staff).key


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_valid_requests_get_responses_that_conform(case, staff_token):
    case.call_and_validate(headers={"Authorization": f"Token {staff_token}"}, checks=CHECKS)


@invalid_requests.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_invalid_requests_never_get_a_server_error(case, staff_token):
    case.call_and_validate(headers={"Authorization": f"Token {staff_token}"}, checks=[not_a_server_error])


@pytest.mark.parametrize("pk", ["-1", "0", "99999999999999999999999"])
def test_ids_outside_the_range_are_a_json_404(user_client, pk):
    response = user_client.get(f"/api/predictions/{pk}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
