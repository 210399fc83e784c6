"""Who may do what, for every API endpoint, page and the admin; CSRF, CORS and escaping.

The callers (one per row of the matrix):
- anonymous: nobody logged in. May classify (unless ALLOW_ANONYMOUS_PREDICT is off) and read
  the model metadata and health; may not read the log, and sees no stored image but their own.
- user / user-token: a logged-in non-staff user, by session or by API token. May also read the log.
- staff / staff-token: staff, by session or token. May also delete and use the admin.
Tokens authenticate the API only: the pages and the admin ignore them.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "user", "user-token", "staff", "staff-token"]
LEVEL = {"anonymous": 0, "user": 1, "user-token": 1, "staff": 2, "staff-token": 2}


@pytest.fixture
def caller(request, user, staff):
    role = request.param
    client = APIClient()
    if role in ("user", "staff"):
        client.force_login(user if role == "user" else staff)
    elif role.endswith("-token"):
        owner = user if role == "user-token" else staff
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    return role, client


def upload_body():
    return {"image": [SimpleUploadedFile("g.png", make_image_bytes(), "image/png")]}


# (name, method, url from the record, request kwargs, expected status for anonymous / user / staff)
API = [
    ("predict", "post", lambda p: reverse("api:prediction-list"), upload_body, (201, 201, 201)),
    ("list", "get", lambda p: reverse("api:prediction-list"), None, (401, 200, 200)),
    ("csv", "get", lambda p: reverse("api:prediction-list") + "?format=csv", None, (401, 200, 200)),
    ("detail", "get", lambda p: reverse("api:prediction-detail", args=[p.pk]), None, (401, 200, 200)),
    ("delete", "delete", lambda p: reverse("api:prediction-detail", args=[p.pk]), None, (401, 403, 204)),
    ("bulk-delete", "post", lambda p: reverse("api:prediction-bulk-delete"), "all", (401, 403, 200)),
    ("model", "get", lambda p: reverse("api:model"), None, (200, 200, 200)),
    ("live", "get", lambda p: reverse("api:health-live"), None, (200, 200, 200)),
    ("ready", "get", lambda p: reverse("api:health-ready"), None, (200, 200, 200)),
    ("schema", "get", lambda p: reverse("schema"), None, (200, 200, 200)),
    ("docs", "get", lambda p: reverse("swagger-ui"), None, (200, 200, 200)),
    # Stored images take API tokens too, so that a script can fetch the image_url it was given.
    ("image", "get", lambda p: "/media/" + p.image.name, None, (404, 200, 200)),
]
# Pages and admin: sessions only, so token callers are treated as anonymous.
PAGES = [
    ("upload-page", "get", lambda p: reverse("classifier:upload"), None, (200, 200, 200)),
    ("history-page", "get", lambda p: reverse("classifier:history"), None, (302, 200, 200)),
    ("history-csv", "get", lambda p: reverse("classifier:history-csv"), None, (302, 200, 200)),
    ("detail-page", "get", lambda p: p.get_absolute_url(), None, (302, 200, 200)),
    ("admin-index", "get", lambda p: reverse("admin:index"), None, (302, 302, 200)),
    (
        "admin-changelist",
        "get",
        lambda p: reverse("admin:classifier_prediction_changelist"),
        None,
        (302, 302, 200),
    ),
    (
        "admin-change",
        "get",
        lambda p: reverse("admin:classifier_prediction_change", args=[p.pk]),
        None,
        (302, 302, 200),
    ),
    (
        "admin-delete",
        "post",
        lambda p: reverse("admin:classifier_prediction_delete", args=[p.pk]),
        "confirm",
        (302, 302, 302),
    ),
]
DESTRUCTIVE = {"delete", "bulk-delete", "admin-delete"}


def send(client, method, url, body):
    if body == "all":
        return client.post(url, {"all": True}, format="json")
    if body == "confirm":
        return client.post(url, {"post": "yes"})
    if callable(body):
        return client.post(url, body(), format="multipart")
    return getattr(client, method)(url)


@pytest.mark.parametrize("caller", ROLES, indirect=True)
@pytest.mark.parametrize("row", API + PAGES, ids=[row[0] for row in API + PAGES])
def test_access_matrix(caller, row, django_capture_on_commit_callbacks):
    role, client = caller
    name, method, url, body, expected = row
    record = PredictionFactory()
    level = 0 if row in PAGES and role.endswith("-token") else LEVEL[role]
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, method, url(record), body)

    assert response.status_code == expected[level], (role, name, response.content[:300])
    if name in DESTRUCTIVE:
        assert Prediction.objects.filter(pk=record.pk).exists() == (level < 2)
    if response.status_code == 302:
        if name == "admin-delete" and level == 2:
            # The log is read-only in the admin, so after a delete it returns to the admin index.
            assert response["Location"] == reverse("admin:index")
        else:
            assert response["Location"].startswith((reverse("login"), reverse("admin:login")))


def test_anonymous_predict_can_be_switched_off(settings, anonymous_client, user_client):
    settings.ALLOW_ANONYMOUS_PREDICT = False
    response = anonymous_client.post(reverse("api:prediction-list"), upload_body(), format="multipart")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert Prediction.objects.count() == 0
    assert (
        user_client.post(reverse("api:prediction-list"), upload_body(), format="multipart").status_code == 201
    )


def test_throttling_applies_to_anonymous_callers_only(settings, monkeypatch, user_client, anonymous_client):
    from rest_framework.throttling import AnonRateThrottle

    assert (
        settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"] == AnonRateThrottle.THROTTLE_RATES["anon"]
    )
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "2/minute"})
    url = reverse("api:prediction-list")
    anonymous = [anonymous_client.post(url, upload_body(), format="multipart") for _ in range(3)]
    assert [r.status_code for r in anonymous] == [201, 201, 429]
    assert "throttled" in anonymous[2].json()["detail"].lower()
    assert int(anonymous[2]["Retry-After"]) > 0
    assert Prediction.objects.count() == 2
    assert [user_client.post(url, upload_body(), format="multipart").status_code for _ in range(3)] == [
        201
    ] * 3


class TestCsrf:
    """Cookie sessions need the CSRF token on unsafe requests; API tokens carry no ambient authority."""

    def test_session_api_post_without_csrf_token_is_refused(self, user):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(user)
        response = client.post(reverse("api:prediction-list"), upload_body(), format="multipart")
        assert response.status_code == 403
        assert "CSRF" in response.json()["detail"]
        assert Prediction.objects.count() == 0

    def test_session_api_post_with_csrf_token_is_accepted(self, user):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(user)
        client.get(reverse("classifier:upload"))
        token = client.cookies["csrftoken"].value
        response = client.post(
            reverse("api:prediction-list"), upload_body(), format="multipart", HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == 201

    def test_session_delete_without_csrf_token_is_refused(self, staff):
        record = PredictionFactory()
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(staff)
        response = client.delete(reverse("api:prediction-detail", args=[record.pk]))
        assert response.status_code == 403
        assert Prediction.objects.filter(pk=record.pk).exists()

    def test_token_callers_need_no_csrf_token(self, staff):
        record = PredictionFactory()
        client = APIClient(enforce_csrf_checks=True)
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
        response = client.delete(reverse("api:prediction-detail", args=[record.pk]))
        assert response.status_code == 204

    def test_upload_page_post_without_csrf_token_is_refused(self, client):
        from django.test import Client

        strict = Client(enforce_csrf_checks=True)
        response = strict.post(reverse("classifier:upload"), upload_body())
        assert response.status_code == 403
        assert Prediction.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", reverse("api:prediction-list")),
        ("options", reverse("api:prediction-list")),
        ("get", reverse("api:model")),
        ("post", reverse("api:prediction-list")),
    ],
)
def test_no_cors_headers_for_foreign_origins(user_client, method, path):
    response = getattr(user_client, method)(
        path, HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert response.status_code < 500
    cors = [header for header in response.headers if header.lower().startswith("access-control-")]
    assert cors == []


MARKUP_NAME = '<img src=x onerror="alert(1)">.png'
ESCAPED_NAME = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.png"


@pytest.fixture
def markup_record(anonymous_client):
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {"image": [SimpleUploadedFile(MARKUP_NAME, make_image_bytes(), "image/png")]},
        format="multipart",
    )
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["predictions"][0]["filename"] == MARKUP_NAME
    return Prediction.objects.get()


@pytest.mark.parametrize(
    "url",
    [
        lambda p: reverse("admin:classifier_prediction_changelist"),
        lambda p: reverse("admin:classifier_prediction_change", args=[p.pk]),
        lambda p: reverse("admin:classifier_prediction_delete", args=[p.pk]),
        lambda p: reverse("api:prediction-detail", args=[p.pk]) + "?format=api",
        lambda p: reverse("api:prediction-list") + "?format=api",
    ],
    ids=["admin-changelist", "admin-change", "admin-delete", "browsable-detail", "browsable-list"],
)
def test_markup_in_filenames_is_shown_escaped(admin_client, markup_record, url):
    html = admin_client.get(url(markup_record)).content.decode()
    assert "onerror" in html
    assert MARKUP_NAME not in html
    assert 'onerror="alert(1)"' not in html
    assert "&lt;img src=x onerror=" in html


def test_csv_export_quotes_markup_and_formulas(user_client):
    PredictionFactory(original_filename='=HYPERLINK("http://evil.example")')
    PredictionFactory(original_filename=MARKUP_NAME)
    body = user_client.get(reverse("api:prediction-list") + "?format=csv").content.decode()
    assert "\n=HYPERLINK" not in body
    assert ",=HYPERLINK" not in body
    assert "'=HYPERLINK" in body
