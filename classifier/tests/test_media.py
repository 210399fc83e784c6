"""/media/...: stored images follow the audit log's access rule."""

import pytest

from classifier.predictions.ownership import OWN_PREDICTIONS_SESSION_KEY
from classifier.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def test_logged_in_user_sees_images(client, user):
    prediction = PredictionFactory()
    client.force_login(user)
    response = client.get(f"/media/{prediction.image.name}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_anonymous_sees_only_their_own_uploads(client):
    own = PredictionFactory()
    other = PredictionFactory()
    session = client.session
    session[OWN_PREDICTIONS_SESSION_KEY] = [own.pk]
    session.save()
    assert client.get(f"/media/{own.image.name}").status_code == 200
    assert client.get(f"/media/{other.image.name}").status_code == 404


def test_path_traversal_is_refused(client, user):
    client.force_login(user)
    for path in (
        "/media/../galaxysite/settings.py",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/predictions/../../x",
    ):
        response = client.get(path)
        assert response.status_code in {400, 404}, path
        assert b"SECRET_KEY" not in b"".join(getattr(response, "streaming_content", [response.content]))
