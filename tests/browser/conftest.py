"""Playwright (Python, sync API) driving Debian's Chromium against pytest-django's live_server.

Fixtures:
- `browser` (session): one headless Chromium for the whole run.
- `page`: a fresh browser context and page per test (no shared cookies), 1280x800.
- `login(page, user)`: signs a user in through the real login form.
- `screenshot(page, name)`: saves tests/browser/screenshots/<name>.png for review.

Tests using them need the live server, so they take `live_server` (which implies
`transactional_db`) and are marked `@pytest.mark.browser`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
# thread with a running loop unless told they are safe (they are: the loop only drives
# the browser, the test's own code is synchronous).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def _plain_http_live_server_settings() -> Iterator[None]:
    """The live server speaks plain HTTP. SecurityMiddleware reads SECURE_SSL_REDIRECT when
    the server thread builds its handler, i.e. before the function-scoped `settings`
    overrides of tests/conftest.py apply, so switch it off for the whole session first."""
    from django.test.utils import override_settings

    with override_settings(
        SECURE_SSL_REDIRECT=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        SECURE_HSTS_SECONDS=0,
    ):
        yield


@pytest.fixture(scope="session")
def live_server(_plain_http_live_server_settings, live_server):
    """pytest-django's live server, started after the plain-HTTP settings above."""
    return live_server


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session", autouse=True)
def _serialized_contents_in_every_context(django_db_setup) -> None:
    """Browser tests run with a different `connections["default"]` object than the one the
    test database was created (and serialized) on: connections are context-local and the
    live server / Playwright's loop start a new context. Without the serialized copy on
    that object, serialized rollback silently restores nothing after the first flush (so
    roles and rule sets are gone in the second browser test after any plain db test).
    Put the copy on the connection class, where every connection object sees it."""
    from django.db import connections

    for alias in connections:
        connection = connections[alias]
        contents = getattr(connection, "_test_serialized_contents", None)
        if contents is not None:
            type(connection)._test_serialized_contents = contents


@pytest.fixture
def page(django_db_serialized_rollback, browser, live_server) -> Iterator:
    """A fresh page. The live server needs a transactional database, which is flushed
    after each test; serialized rollback restores what the data migrations created
    (roles, regions, rule sets) for the next test."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    # A CSP violation or a script error shows up as a console error: fail loudly.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture
def login() -> Callable:
    from tests.factories import PASSWORD

    def do_login(page, user, password: str = PASSWORD) -> None:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)

    return do_login


@pytest.fixture
def screenshot() -> Callable:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, locator=None) -> Path:
        """The full page, or only `locator` (an element) when given."""
        path = SCREENSHOTS / f"{name}.png"
        # caret="initial": the default hides the caret with an injected <style>, which
        # the CSP blocks and reports as a console error.
        if locator is not None:
            locator.screenshot(path=str(path), caret="initial")
        else:
            page.screenshot(path=str(path), full_page=True, caret="initial")
        return path

    return take


A11Y_SCRIPT = """() => {
  const problems = [];
  const seen = new Map();
  for (const el of document.querySelectorAll('[id]')) {
    if (seen.has(el.id)) problems.push(`duplicate id "${el.id}"`);
    seen.set(el.id, true);
  }
  const controls = document.querySelectorAll(
    'input:not([type=hidden]):not([type=submit]), select, textarea');
  for (const el of controls) {
    if (!el.labels.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      problems.push(`no label for ${el.tagName.toLowerCase()} name="${el.name}"`);
  }
  for (const img of document.querySelectorAll('svg[role=img]')) {
    if (!img.querySelector('title')) problems.push('svg without a title');
  }
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  let last = 1;
  for (const h of document.querySelectorAll('h1, h2, h3, h4')) {
    const level = Number(h.tagName[1]);
    if (level > last + 1) problems.push(`heading jumps to ${h.tagName}: "${h.textContent.trim()}"`);
    last = level;
  }
  return problems;
}"""


@pytest.fixture
def a11y_problems() -> Callable:
    """Markup checks a browser can make: unique ids, a label for every form control, a
    title for every SVG image, one h1 and no skipped heading level."""

    def check(page) -> list[str]:
        return page.evaluate(A11Y_SCRIPT)

    return check
