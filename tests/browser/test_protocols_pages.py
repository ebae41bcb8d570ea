"""Protocol pages in a real browser: an administrator publishes a new version through the
form (an error first, named by key), then the version page and the comparison."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.protocols.models import ProtocolVersion
from tests.browser.conftest import log_in
from tests.web.protocols.conftest import renamed_text, standard  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_an_administrator_publishes_a_version_and_compares_it_with_the_last(
    transactional_db: Any, cast: Any, standard: Any,  # noqa: F811
    live_server: Any, page: Any, shot: Any,
) -> None:
    log_in(page, live_server, cast.dave, "a long administrator passphrase")
    page.click("header >> text=Protocols")
    page.wait_for_selector("h1:has-text('Protocols')")
    shot("list-before")
    page.click("text=Publish a version")
    new = standard.version + 1  # the next version after the one shipped as current

    broken = renamed_text(standard, version=new, replace={
        r'^max_rate = \{ value = 100, unit = "mg/h", source = "[^"]*"':
            'max_rate = { value = 90, unit = "mg/h"'})
    page.fill("#id_toml_text", broken)
    page.fill("#id_change_note", "Lower the maximum rate to 90 mg/h after the audit of 2026.")
    page.click("button[name=publish]")
    page.wait_for_selector(".errorlist")
    assert "dosing.max_rate" in page.inner_text(".errorlist")
    shot("error-named")

    fixed = renamed_text(standard, version=new, replace={
        r"^max_rate = \{ value = 100,": "max_rate = { value = 90,"})
    page.fill("#id_toml_text", fixed)
    page.click("button[name=check]")
    page.wait_for_selector("#check")
    assert "dosing.max_rate" in page.inner_text("#check")
    shot("checked")
    page.click("button[name=publish]")
    page.wait_for_selector("h1:has-text('Clinic standard')")
    assert page.url.endswith(f"/protocols/clinic-standard/v{new}/")
    published = ProtocolVersion.objects.get(name="clinic-standard", version=new)
    assert published.published_by == cast.dave
    shot("version-page")

    page.click("text=Compare with the previous version")
    page.wait_for_selector("tr.changed")
    changed = page.inner_text("tr.changed:has-text('dosing.max_rate')")
    assert "100" in changed
    assert "90" in changed
    shot("comparison")

    page.goto(f"{live_server.url}/protocols/clinic-standard/v{standard.version}/")
    assert "This is not the newest version" in page.inner_text("main")
    page.click("#dosing a.ref >> nth=0")
    page.wait_for_selector(".refrow:target")
    shot("references")
