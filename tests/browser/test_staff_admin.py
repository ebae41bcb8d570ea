"""The administrator unlocks a locked-out user in a real browser: Bob fails to log in
until the lock-out page shows, Dave finds him marked locked on the staff page and
unlocks him, and Bob logs in."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def _attempt(page: Any, live_server: Any, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_the_administrator_unlocks_a_user(transactional_db: Any, cast: Any, live_server: Any,
                                          page: Any, shot: Any) -> None:
    cast.bob.set_password("a long nurse passphrase")
    cast.bob.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _attempt(page, live_server, "bob", "not the password")
    _attempt(page, live_server, "bob", "a long nurse passphrase")
    assert "locked" in page.inner_text("main").lower()
    shot("locked-out")

    log_in(page, live_server, cast.dave, "a long administrator passphrase")
    page.click("header.top a:has-text('Staff')")
    row = page.locator("#staff tr[data-user='bob']")
    assert "locked out" in row.inner_text()
    shot("staff-list")
    row.locator("a").click()
    page.click("#unlock")
    page.wait_for_selector(".messages")
    assert "unlocked" in page.inner_text(".messages").lower()
    assert "locked out" not in page.inner_text("#account-status")
    shot("unlocked")
    page.click("header.top button:has-text('Log out')")
    page.wait_for_url(f"{live_server.url}/login/**")

    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    assert "Bob" in page.inner_text("header.top")
