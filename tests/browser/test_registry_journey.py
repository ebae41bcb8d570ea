"""The registry journey in a real browser: log in, find a patient, record a weight, log out."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.patients.models import Measurement
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_a_nurse_finds_a_patient_records_a_weight_and_sees_the_history(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    shot("home")
    page.click("text=Patients")
    page.fill("input[name=q]", "Ruiz")
    page.wait_for_selector("#results >> text=Ruiz, Ana")
    shot("search")
    page.click("#results >> text=Ruiz, Ana")
    page.wait_for_selector("h1:has-text('Ruiz, Ana')")

    page.select_option("#id_kind", "weight_kg")
    page.fill("#id_value_number", "68.4")
    page.fill("#id_measured_at", "2026-11-20T09:15")
    page.click("#measurements button:has-text('Record')")
    page.wait_for_selector("#measurements td:has-text('68.4 kg')")

    page.fill("#id_value_number", "71")
    page.fill("#id_measured_at", "2026-11-24T10:00")
    page.click("#measurements button:has-text('Record')")
    page.wait_for_selector("#measurements td:has-text('71 kg')")
    rows = page.locator("#measurements tbody tr").all_inner_texts()
    assert "71 kg" in rows[0]
    assert "68.4 kg" in rows[1]
    assert "71 kg" in page.inner_text("#demographics")  # latest weight shown
    shot("history")
    assert Measurement.objects.filter(patient=cast.ana).count() == 2

    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/")
    assert "/login/" in page.url  # the session is gone


def test_a_weight_typed_with_a_decimal_slip_is_refused_on_the_page(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/")
    page.fill("#id_value_number", "684")
    page.fill("#id_measured_at", "2026-11-20T09:15")
    page.click("#measurements button:has-text('Record')")
    page.wait_for_selector("text=outside the plausible range")
    shot("refused")
    assert not Measurement.objects.filter(patient=cast.ana).exists()
