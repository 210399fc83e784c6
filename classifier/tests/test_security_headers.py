"""Content-Security-Policy and Permissions-Policy on every response, and pages that need
nothing the policy forbids: no inline script, style or event handler (issue 14, item 10).

The browser tests (browser/test_content_security_policy.py) prove the same in Chromium;
these run without it.

- visitor: anonymous;
- staff: sees the history, the browsable API and the admin.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from classifier.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db

EXPECTED_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' blob:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
DENIED_FEATURES = ("camera", "microphone", "geolocation", "usb", "payment")
# What a browser runs as script rather than reads as data.
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    directives = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return dict(directives)


class InlineCodeFinder(HTMLParser):
    """Collects what a strict policy would block: inline scripts and styles, handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "style":
            self.blocked.append("<style> element")
        if tag == "script" and "src" not in attributes:
            self._in_inline_script = (attributes.get("type") or "").lower() not in DATA_SCRIPT_TYPES
        for name, value in attrs:
            if name == "style":
                self.blocked.append(f"style attribute on <{tag}>: {value}")
            if name.startswith("on"):
                self.blocked.append(f"{name} handler on <{tag}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.blocked.append(f"javascript: URL on <{tag}>")

    def handle_data(self, data: str) -> None:
        if self._in_inline_script and data.strip():
            self.blocked.append(f"inline script: {data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder.blocked


def test_pages_carry_the_strict_policy(client):
    response = client.get(reverse("classifier:upload"))
    assert response.status_code == 200
    assert policy(response) == EXPECTED_POLICY


def test_permissions_policy_denies_powerful_features(client):
    header = client.get(reverse("classifier:classes"))["Permissions-Policy"]
    features = dict(part.strip().split("=", 1) for part in header.split(","))
    for feature in DENIED_FEATURES:
        assert features[feature] == "()"


@pytest.mark.parametrize(
    "path",
    [
        "/api/model/",
        "/api/health/live",
        "/api/schema/",
        "/accounts/login/",
        "/admin/login/",
        "/no-such-page/",
    ],
)
def test_every_kind_of_response_carries_both_headers(client, path):
    response = client.get(path)
    assert policy(response) == EXPECTED_POLICY
    assert "camera=()" in response["Permissions-Policy"]


def test_an_early_refusal_carries_the_policy_too(client, settings):
    # The request-size guard answers before any view runs.
    response = client.post(
        reverse("classifier:upload"), data=b"x", content_type="image/png", CONTENT_LENGTH=str(10**12)
    )
    assert response.status_code == 413
    assert policy(response) == EXPECTED_POLICY


def test_upload_messages_are_data_not_script(client):
    html = client.get(reverse("classifier:upload")).content.decode()
    assert '<script type="application/json" id="upload-messages">' in html
    assert inline_code(html) == []


@pytest.mark.parametrize(
    "name",
    [
        "classifier:upload",
        "classifier:classes",
        "classifier:model",
        "login",
        "swagger-ui",
        "api:model",
    ],
)
def test_anonymous_pages_have_no_inline_code(client, name):
    response = client.get(reverse(name), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert inline_code(response.content.decode()) == []


def test_only_the_api_docs_allow_data_images(client):
    assert policy(client.get(reverse("swagger-ui")))["img-src"] == "'self' blob: data:"
    assert policy(client.get(reverse("swagger-ui") + "?script="))["img-src"] == "'self' blob: data:"


def test_swagger_ui_start_up_script_is_a_javascript_file(client):
    page = client.get(reverse("swagger-ui")).content.decode()
    assert '<script src="/api/docs/?script="></script>' in page
    script = client.get(reverse("swagger-ui") + "?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_staff_pages_have_no_inline_code(client, staff):
    prediction = PredictionFactory()
    client.force_login(staff)
    paths = [
        reverse("classifier:history"),
        reverse("classifier:prediction-detail", args=[prediction.pk]),
        reverse("classifier:results") + f"?ids={prediction.pk}",
        reverse("api:prediction-list"),
        reverse("api:prediction-detail", args=[prediction.pk]),
        reverse("admin:index"),
        reverse("admin:classifier_prediction_changelist"),
        reverse("admin:classifier_prediction_change", args=[prediction.pk]),
        reverse("admin:classifier_prediction_delete", args=[prediction.pk]),
        reverse("admin:auth_user_changelist"),
        reverse("admin:auth_user_change", args=[staff.pk]),
        reverse("admin:auth_user_add"),
        reverse("admin:password_change"),
    ]
    for path in paths:
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, path
        assert inline_code(response.content.decode()) == [], path
