"""Database round trips of POST /api/predictions/ (see docs/benchmarks.md, "DB round trips").

However many images a request sends, it costs one INSERT (every row in it, ids returned)
and, on PostgreSQL, one statement taking the advisory locks on their stored files; nothing
is read back: the response is built from the rows just written, and an anonymous caller's
request touches no session or user table.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from classifier.models import Prediction
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db

URL = reverse("api:prediction-list")


def _uploads(count: int) -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile(
            f"galaxy_{index}.png", make_image_bytes(color=(index * 15, 90, 200 - index * 10)), "image/png"
        )
        for index in range(count)
    ]


def _post_and_capture(client, count: int) -> list[str]:
    client.post(URL, {"image": _uploads(1)}, format="multipart")  # loads the model outside the count
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, {"image": _uploads(count)}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    # One image answers with the prediction itself, several with a list of them.
    returned = body.get("predictions", [body])
    ids = {prediction["id"] for prediction in returned}
    assert len(ids) == count
    assert Prediction.objects.filter(pk__in=ids).count() == count
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize("count", [1, 16])
def test_a_request_costs_one_insert_one_lock_and_nothing_is_read_back(anonymous_client, count):
    statements = _post_and_capture(anonymous_client, count)
    inserts = [sql for sql in statements if sql.startswith("INSERT")]
    assert len(inserts) == 1
    assert '"classifier_prediction"' in inserts[0]
    reads = [sql for sql in statements if sql.startswith("SELECT") and "pg_advisory_xact_lock" not in sql]
    assert reads == []
    control = [s for s in statements if "SAVEPOINT" in s or s in ("BEGIN", "COMMIT")]
    locks = [s for s in statements if s not in inserts and s not in control]
    assert len(locks) == 1
    if connection.vendor == "postgresql":
        assert "pg_advisory_xact_lock" in locks[0]


def test_a_logged_in_caller_adds_no_queries_per_image(user_client):
    statements = _post_and_capture(user_client, 16)
    assert len([sql for sql in statements if sql.startswith("INSERT")]) == 1
    # Token/session authentication reads the user once per request, not per image.
    assert len(statements) <= 8
