"""Every page runs under the strict Content-Security-Policy without a single violation,
and still works (issue 14, item 10).

Violations are caught twice: by a `securitypolicyviolation` listener installed before
any page script runs, and by Chromium's console messages (which also report a
Permissions-Policy header it cannot parse).

- visitor: anonymous; classifies images, reads the classes, the model and the API docs;
- curator: staff; reads the history, the browsable API and the admin.
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from classifier.models import Prediction

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const blocked = event.blockedURI || "inline";
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__cspViolations.push(`${event.violatedDirective} blocked ${blocked} at ${where}`);
});
"""
POLICY_MESSAGE = re.compile(r"Content.Security.Policy|Permissions.Policy|Refused to", re.IGNORECASE)


def galaxy_png(seed: int) -> bytes:
    """A small synthetic galaxy: a bright core fading into a dark sky."""
    size = 96
    image = Image.radial_gradient("L").resize((size, size))
    image = Image.eval(image, lambda value: max(0, 255 - value - seed * 10))
    buffer = io.BytesIO()
    Image.merge("RGB", (image, image, image)).save(buffer, format="PNG")
    return buffer.getvalue()


class PolicyWatch:
    """Collects the violations of every page the browser page visits."""

    def __init__(self, page) -> None:
        self.page = page
        self.console: list[str] = []
        self.events: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._on_console)

    def _on_console(self, message) -> None:
        if POLICY_MESSAGE.search(message.text):
            self.console.append(f"{self.page.url}: {message.text}")

    def collect(self) -> None:
        """Read the listener's findings before the page navigates away."""
        self.page.wait_for_load_state("networkidle")
        found = self.page.evaluate("window.__cspViolations || []")
        self.events.extend(f"{self.page.url}: {violation}" for violation in found)

    def visit(self, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None
        assert response.status == 200, url
        assert "default-src 'self'" in response.header_value("content-security-policy")
        self.collect()

    def assert_clean(self) -> None:
        assert self.events == []
        assert self.console == []


@pytest.fixture
def watch(page) -> PolicyWatch:
    return PolicyWatch(page)


def test_visitor_pages_and_upload_flow_have_no_violation(live_server, page, watch, tmp_path):
    base = live_server.url
    watch.visit(f"{base}/")
    first, second = tmp_path / "m51.png", tmp_path / "m101.png"
    first.write_bytes(galaxy_png(1))
    second.write_bytes(galaxy_png(2))

    # One image: the preview is a blob: URL, then the detail page.
    page.get_by_label("Galaxy images").set_input_files(str(first))
    preview = page.locator("#file-list .file-item img")
    expect(preview).to_have_count(1)
    assert preview.evaluate("img => img.src.startsWith('blob:')")
    page.wait_for_function("document.querySelector('#file-list .file-item img').naturalWidth > 0")
    watch.collect()
    page.get_by_role("button", name="Classify").click()
    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    expect(page.locator("#prediction-class")).to_have_text(Prediction.objects.get().class_name)
    assert page.locator(".result-image img").evaluate("img => img.complete && img.naturalWidth > 0")
    watch.collect()

    # Two images: the results grid.
    page.goto(f"{base}/")
    page.get_by_label("Galaxy images").set_input_files([str(first), str(second)])
    page.get_by_role("button", name="Classify").click()
    page.wait_for_url(re.compile(r"/results/\?ids="))
    expect(page.locator("#results-grid .grid-card")).to_have_count(2)
    watch.collect()

    # A refused file: the per-file error comes from the JSON messages block.
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    page.goto(f"{base}/")
    page.get_by_label("Galaxy images").set_input_files(str(bad))
    page.get_by_role("button", name="Classify").click()
    expect(page.locator('#file-list .file-item[data-filename="notes.jpg"] .file-error')).not_to_be_empty()
    watch.collect()

    for path in ("/classes/", "/model/", "/accounts/login/", "/api/model/", "/api/health/live"):
        watch.visit(f"{base}{path}")

    # Swagger UI runs its start-up script from a file and draws the operations.
    watch.visit(f"{base}/api/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    watch.collect()

    # The language switch posts a form and follows a redirect (form-action).
    page.goto(f"{base}/classes/")
    page.locator("#language-select").select_option("es")
    page.locator("#language-form button").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    watch.collect()

    watch.assert_clean()


def test_staff_pages_history_api_and_admin_have_no_violation(live_server, page, watch, curator, log_in):
    base = live_server.url
    log_in(page, "curator", "ngc-224-curator")
    watch.collect()
    page.get_by_label("Galaxy images").set_input_files(
        files=[{"name": "ngc1300.png", "mimeType": "image/png", "buffer": galaxy_png(3)}]
    )
    page.get_by_role("button", name="Classify").click()
    page.wait_for_url(re.compile(r"/predictions/\d+/$"))
    watch.collect()
    prediction = Prediction.objects.get()

    for path in (
        "/history/",
        "/history/?source=web&ordering=-confidence",
        f"/predictions/{prediction.pk}/",
        "/api/predictions/",
        f"/api/predictions/{prediction.pk}/",
        "/admin/",
        "/admin/classifier/prediction/",
        "/admin/classifier/prediction/?source__exact=web",
        f"/admin/classifier/prediction/{prediction.pk}/change/",
        f"/admin/classifier/prediction/{prediction.pk}/delete/",
        "/admin/auth/user/",
        f"/admin/auth/user/{curator.pk}/change/",
        "/admin/auth/user/add/",
        "/admin/password_change/",
    ):
        watch.visit(f"{base}{path}")

    # The browsable API's forms are drawn by its own scripts (jQuery, Bootstrap).
    page.goto(f"{base}/api/predictions/")
    expect(page.locator(".response-info")).to_contain_text(prediction.original_filename)
    page.locator("a.format-selection, .dropdown-toggle").first.click()
    watch.collect()

    # The admin's scripts still run: the action bar counts the selected rows.
    page.goto(f"{base}/admin/classifier/prediction/")
    page.locator("input.action-select").first.check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    watch.collect()

    page.goto(f"{base}/")
    page.get_by_role("button", name=re.compile("Log out")).click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    watch.collect()

    watch.assert_clean()
