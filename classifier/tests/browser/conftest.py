"""Headless Chromium (Debian's package) driven by Playwright against pytest-django's live server.

Playwright's sync API runs an asyncio loop in the test thread; Django refuses
ORM calls from a thread with a running loop unless DJANGO_ALLOW_ASYNC_UNSAFE
is set. Tests here are synchronous, so that check does not apply to them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "screenshots: saves page screenshots into docs/screenshots/ (run with -m screenshots)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Screenshots rewrite files in docs/, so they only run when asked for explicitly.
    if "screenshots" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="screenshots run only with: pytest -m screenshots")
    for item in items:
        if item.get_closest_marker("screenshots"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM_PATH.exists():
        pytest.skip(f"{CHROMIUM_PATH} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser) -> Iterator[object]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def page(context) -> object:
    return context.new_page()


@pytest.fixture
def curator():
    """Staff: reads the history, the browsable API and every admin page, may delete records in
    the admin, and sees every header link (Admin too), the widest header there is."""
    return get_user_model().objects.create_user(
        username="curator", password="ngc-224-curator", is_staff=True, is_superuser=True
    )


@pytest.fixture
def log_in(live_server):
    """Logs a page in through the real login form."""

    def log_in(page, username: str, password: str, *, next_url: str = "/") -> None:
        page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}{next_url}")

    return log_in
