"""A whole infusion session in a real browser: check-in to stop on the bedside page, the
chart and the board; then recovery to discharge through the gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.web.sessions.models import Alarm, TimelineEntry
from tests.browser.conftest import log_in
from tests.web.sessions import conftest as session_fixtures
from tests.web.sessions.conftest import VITALS, Walk

# The web tests' fixtures: a verified order under the shipped protocol, and a session walker.
clinic = session_fixtures.clinic
walk = session_fixtures.walk

pytestmark = pytest.mark.browser
PASSWORD = "a long nurse passphrase"


def _vitals(page: Any, **change: Any) -> None:
    for name, value in {**VITALS, **change}.items():
        page.fill(f"#vitals-form [name={name}]", str(value))
    page.click("#vitals-form button[type=submit]")
    page.wait_for_selector(".messages li:has-text('Vitals recorded')")


def _state(page: Any, expected: str) -> None:
    page.wait_for_selector(f"[data-testid=state]:has-text('{expected}')")


def test_a_nurse_charts_a_whole_session_from_check_in_to_stop(
        transactional_db: Any, walk: Walk, live_server: Any, page: Any, shot: Any) -> None:
    page.set_viewport_size({"width": 1180, "height": 820})  # a tablet beside the chair
    log_in(page, live_server, walk.c.cast.bob, PASSWORD)
    page.click("header >> text=Chairs")
    page.click("#board >> text=Ruiz, Ana")
    _state(page, "scheduled")
    page.click("button:has-text('Check in')")
    _state(page, "checked in")
    _vitals(page)
    page.check("form[action$='/observe/pain/'] input[value='7']")
    page.click("button:has-text('Record pain')")
    page.wait_for_selector(".messages li:has-text('Pain recorded')")
    assert page.locator("#start-gate li.missing").count() >= 2  # IV access, escort...
    page.check("[name=iv_access_documented]")
    page.fill("[name=iv_site]", "left forearm, 20 G")
    assert page.input_value("[name=escort_name]") == "Luis Ruiz"
    page.select_option("[name=pregnancy_status]", "not_pregnant")
    page.click("button:has-text('Complete pre-assessment')")
    _state(page, "pre assessment complete")
    page.fill("[name=pre-drug]", "glycopyrrolate")
    page.fill("[name=pre-dose]", "0.2")
    page.click("button:has-text('Record premedication given')")
    _state(page, "premedication given")
    assert "Start gate open" in page.inner_text("#start-gate")
    shot("ready-to-start")

    page.fill("#rate-form [name=rate]", "60 mg/h")
    page.click("#rate-form button[type=submit]")
    _state(page, "infusing")
    assert "0.857 mg/kg/h · 60.0 mg/h · 60.0 mL/h" in page.inner_text("[data-testid=rate-forms]")

    page.check("form[action$='/observe/sedation/'] input[value='4']")
    page.click("button:has-text('Record sedation')")
    page.wait_for_selector(".messages li:has-text('Sedation recorded')")
    for item, value in (("item_1", "1"), ("item_2", "2"), ("item_7", "1")):
        page.select_option(f"form[action$='/observe/dissociation/'] [name={item}]", value)
    page.click("button:has-text('Record CADSS-6')")
    page.wait_for_selector(".messages li:has-text('Dissociation recorded')")
    _vitals(page, systolic_bp_mmhg=186, heart_rate_per_min=96)
    page.wait_for_selector("[data-testid=unacked]")
    page.fill("#alarms input[name=response]", "rate held, repeat in 5 min, physician told")
    page.click("#alarms button:has-text('Acknowledge')")
    page.wait_for_selector(".messages li:has-text('Alarm acknowledged')")

    # Raising the rate two minutes after the start breaks the 15-minute titration interval
    # (a soft limit): refused until a reason is given.
    page.fill("#rate-form [name=rate]", "70 mg/h")
    page.click("#rate-form button[type=submit]")
    page.wait_for_selector("[data-testid=rate-error]:has-text('needs an override')")
    shot("soft-limit")
    page.select_option("#rate-form [name=override_code]", index=1)
    page.fill("#rate-form [name=override_text]", "pain 8/10, comfortable, physician agreed")
    page.fill("#rate-form [name=rate]", "70 mg/h")
    page.click("#rate-form button[type=submit]")
    page.wait_for_selector(".messages li:has-text('70 mg/h')")
    _vitals(page, systolic_bp_mmhg=150, heart_rate_per_min=88)
    page.click("form[action$='/event/pause/'] button")
    _state(page, "paused")
    page.click("form[action$='/event/resume/'] button")
    _state(page, "infusing")
    page.wait_for_selector("#chart .main-svg")
    shot("chart")

    page.click("form[action$='/event/stop/'] button")
    _state(page, "stopped")
    assert TimelineEntry.objects.filter(session=walk.s, kind="stop").exists()
    assert Alarm.objects.filter(session=walk.s, ack__isnull=False).count() == 1
    page.click("button:has-text('Begin recovery')")
    _state(page, "recovering")
    shot("stopped")

    page.click("header >> text=Chairs")
    page.wait_for_selector("#board >> text=Ruiz, Ana")
    shot("board")


def test_recovery_to_discharge_through_the_gate(
        transactional_db: Any, walk: Walk, live_server: Any, page: Any, shot: Any) -> None:
    walk.t0 = timezone.now() - timedelta(hours=4)
    walk.infusing()  # started 3.5 h ago at 60 mg/h
    walk.observe("vitals", 45, **VITALS)
    walk.rate("70 mg/h", 60)
    walk.observe("sedation", 61, score=4)
    walk.observe("vitals", 75, **{**VITALS, "systolic_bp_mmhg": 140})
    walk.event("stop", 150)
    walk.event("begin_recovery", 151)
    page.set_viewport_size({"width": 1180, "height": 820})
    log_in(page, live_server, walk.c.cast.bob, PASSWORD)
    page.goto(f"{live_server.url}/sessions/{walk.s.pk}/")
    _state(page, "recovering")
    page.wait_for_selector("#chart .main-svg")
    shot("chart-of-a-four-hour-session")
    assert "no Modified Aldrete assessment recorded yet" in page.inner_text("[data-testid=gate]")
    _vitals(page, systolic_bp_mmhg=128, heart_rate_per_min=76)
    form = "[data-testid=recovery-aldrete_modified_1995]"
    page.check(f"{form} input[name=obs_activity][value='2']")
    page.check(f"{form} input[name=obs_respiration][value='2']")
    page.check(f"{form} input[name=obs_consciousness][value='1']")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(".messages li:has-text('9/10 recorded')")
    button = page.locator("[data-testid=discharge-button]")
    assert button.is_disabled()
    assert "instructions given" in button.inner_text()
    shot("gate")
    page.check("#discharge-form [name=instructions_given]")
    page.wait_for_selector("[data-testid=discharge-button]:has-text('Discharge'):not([disabled])")
    shot("gate-open")
    page.click("[data-testid=discharge-button]")
    _state(page, "discharged")
    entry = TimelineEntry.objects.get(session=walk.s, kind="discharge")
    assert entry.payload["gate"]["allowed"] is True
    shot("discharged")


def test_the_board_shows_every_chair_with_its_state_rate_and_alarms(
        transactional_db: Any, walk: Walk, live_server: Any, page: Any, shot: Any) -> None:
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.sessions import services
    from tests.web.sessions.conftest import Clinic, make_consent, make_order

    walk.t0 = timezone.now() - timedelta(minutes=70)
    walk.infusing()  # Ana: infusing since 40 min, vital signs last taken before the start
    walk.rate("70 mg/h", 50)
    walk.observe("vitals", 55, **{**VITALS, "heart_rate_per_min": 155})  # an open alarm
    others = []
    for n, (given, chair) in enumerate((("Mona", "4"), ("Nils", "5"))):
        patient = patients.patient_register(
            actor=walk.nurse, site=walk.c.cast.denver, mrn=f"DEN-B{n}", given_name=given,
            family_name="Board", date_of_birth=timezone.localdate() - timedelta(days=15000),
            sex_at_birth="male", escort_name="Escort Board")
        order = make_order(walk.c.cast, patient, walk.c.protocol_version)
        make_consent(walk.c.cast, patient, walk.c.protocol_version)
        session = services.session_schedule(actor=walk.nurse, order=order,
                                            scheduled_for=timezone.now(), chair=chair)
        others.append(Walk(Clinic(walk.c.cast, walk.c.protocol_version, order.series, order,
                                  session, None), t0=walk.t0))
    others[0].infusing()
    others[0].observe("vitals", 35, **VITALS)
    others[0].event("pause", 40, reason="nausea")
    log_in(page, live_server, walk.c.cast.bob, PASSWORD)
    page.click("header >> text=Chairs")
    rows = page.locator("#board tbody tr")
    assert rows.count() == 3
    ana = page.inner_text("#board tr:has-text('Ruiz, Ana')")
    assert "infusing" in ana
    assert "70.0 mg/h" in ana
    assert "unacknowledged" in ana
    assert "overdue" in page.inner_text("#board tr:has-text('Mona')") or \
        "paused" in page.inner_text("#board tr:has-text('Mona')")
    assert "scheduled" in page.inner_text("#board tr:has-text('Nils')")
    shot("board")
