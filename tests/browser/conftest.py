"""Real-browser fixtures: Playwright driving the system's Chromium against a live server.

Playwright's own browser download does not work on our machines, so the tests use the
Chromium from the operating system (``apt-get install chromium``). Without it the tests are
skipped with that reason, except where ``KETAMINE_CLINIC_REQUIRE_BROWSER=1`` (as in CI),
where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
# while one is running unless told that this (test-only) use is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# A folder per database, so that the SQLite and PostgreSQL runs CI starts side by side never
# write, clear or read each other's screenshots and rendered pages.
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / connection.vendor
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("KETAMINE_CLINIC_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        reason = "system Chromium not found (apt-get install chromium)"
        if os.environ.get("KETAMINE_CLINIC_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    # A loaded machine (CI on 2 cores) may need longer: KETAMINE_CLINIC_BROWSER_TIMEOUT_MS.
    pg.set_default_timeout(int(os.environ.get("KETAMINE_CLINIC_BROWSER_TIMEOUT_MS", "15000")))
    yield pg
    context.close()


@pytest.fixture
def shot(page: Any, request: pytest.FixtureRequest) -> Any:
    """Save a full-page screenshot as a test artifact: shot("after-login")."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def wait_until(page: Any, expression: str) -> None:
    """Wait until a JavaScript expression is true on the page.

    Playwright's ``wait_for_function`` evaluates its predicate with ``eval`` inside the page
    after the first try, which the app's Content Security Policy (no 'unsafe-eval')
    refuses; ``page.evaluate`` runs through the browser's debugging protocol instead.
    """
    import time

    timeout_s = int(os.environ.get("KETAMINE_CLINIC_BROWSER_TIMEOUT_MS", "15000")) / 1000
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s:g} s: {expression}")
        page.wait_for_timeout(50)


def log_in(page: Any, live_server: Any, user: Any, password: str) -> None:
    user.set_password(password)
    user.save()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


@pytest.fixture
def sched(cast: Any) -> Any:
    """The scheduling world (tests/web/scheduling/conftest.py) for the calendar pages."""
    from tests.web.scheduling.conftest import make_sched

    return make_sched(cast)


def answer_budapest_met(page: Any) -> None:
    """On the screening form: the Budapest criteria met (Ana's CRPS of the left arm)."""
    page.check("input[name=budapest_disproportionate_pain][value=yes]")
    page.check("input[name=budapest_no_better_diagnosis][value=yes]")
    for item in ("allodynia", "temperature_asymmetry", "oedema"):
        page.check(f"input[name=budapest_symptoms][value={item}]")
    for item in ("hyperalgesia_pinprick", "skin_colour_asymmetry"):
        page.check(f"input[name=budapest_signs][value={item}]")
