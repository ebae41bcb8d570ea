"""A whole infusion session in a real browser: check-in to stop on the bedside page, the
chart and the board; then recovery to discharge through the gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
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


def _give(page: Any, drug: str, indication: str = "") -> None:
    row = f"#mar tr[data-drug={drug}]"
    if indication:
        page.fill(f"{row} input[name$=indication]", indication)
    page.click(f"{row} button[type=submit]")


def _scores(page: Any, moaas: str = "5") -> None:
    page.check(f"form[action$='/observe/sedation/'] input[value='{moaas}']")
    page.click("button:has-text('Record sedation')")
    page.wait_for_selector(".messages li:has-text('Sedation recorded')")
    page.click("button:has-text('Record CADSS-6')")  # every item 0: no dissociation
    page.wait_for_selector(".messages li:has-text('Dissociation recorded')")


def test_a_whole_session_from_check_in_to_discharge(
        transactional_db: Any, walk: Walk, live_server: Any, page: Any, shot: Any,
        request: pytest.FixtureRequest) -> None:
    """Check-in to discharge on the bedside page at tablet size: the start gate, the drug
    given from the order, a refused increase, an alarm acknowledged, a rescue drug, a rate
    above the signed order co-signed by the physician, recovery and the discharge gate."""
    walk.c.cast.alice.set_password("physician passphrase at the chair")
    walk.c.cast.alice.save()
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
    _scores(page)
    assert page.locator("#start-gate li.missing").count() >= 2  # IV access, escort...
    page.check("[name=iv_access_documented]")
    page.fill("[name=iv_site]", "left forearm, 20 G")
    assert page.input_value("[name=escort_name]") == "Luis Ruiz"
    page.select_option("[name=pregnancy_status]", "not_pregnant")
    page.click("button:has-text('Complete pre-assessment')")
    _state(page, "pre assessment complete")
    assert "Start gate open" in page.inner_text("#start-gate")
    assert "No allergies recorded" in page.inner_text("[data-testid=allergies]")
    shot("ready-to-premedicate")
    _give(page, "glycopyrrolate")
    _state(page, "premedication given")

    page.fill("#rate-form [name=rate]", "60 mg/h")
    page.click("#rate-form button[type=submit]")
    _state(page, "infusing")
    assert "0.86 mg/kg/h · 60.0 mg/h · 60.0 mL/h" in page.inner_text("[data-testid=rate-forms]")

    # A refused command: raising the rate with no sedation score since the start.
    page.fill("#rate-form [name=rate]", "70 mg/h")
    page.click("#rate-form button[type=submit]")
    page.wait_for_selector("[data-testid=refusals]:has-text('Score sedation (MOAA/S)')")
    shot("refused-increase")
    assert not TimelineEntry.objects.filter(session=walk.s, kind="rate_change").exists()

    # An alarm: the pressure rises; both alarms (above the limit, risen) are acknowledged.
    _vitals(page, systolic_bp_mmhg=186, heart_rate_per_min=96)
    page.wait_for_selector("[data-testid=unacked]")
    assert "above the alarm limit of 180 mmHg [clinic policy]" in page.inner_text("#alarms")
    shot("alarm")
    while page.locator("#alarms button:has-text('Acknowledge')").count():
        page.fill("#alarms input[name=response] >> nth=0",
                  "rate held, repeat in 5 min, physician told")
        page.click("#alarms button:has-text('Acknowledge') >> nth=0")
        page.wait_for_selector(".messages li:has-text('Alarm acknowledged')")
    _vitals(page, systolic_bp_mmhg=132, heart_rate_per_min=80)

    # A rescue drug from the order.
    _give(page, "midazolam", "restless, frightening imagery")
    page.wait_for_selector(".messages li:has-text('Midazolam 2 mg IV recorded')")

    # 70 mg/h minutes after the start is sooner than the signed 15-minute interval: the
    # nurse cannot; the physician co-signs at the chair.
    _scores(page)
    page.fill("#rate-form [name=rate]", "70 mg/h")
    page.click("#rate-form button[type=submit]")
    page.wait_for_selector("[data-testid=refusals]:has-text(\"signed order's limit of 15 min\")")
    page.fill("#rate-form [name=rate]", "70 mg/h")
    page.locator("[data-testid=cosign]").evaluate("d => { d.open = true; }")
    page.fill("#rate-form [name=physician_username]", "alice")
    page.fill("#rate-form [name=physician_password]", "physician passphrase at the chair")
    page.fill("#rate-form [name=physician_reason]", "pain 8/10, calm; I am at the chair")
    shot("co-sign")
    page.click("#rate-form button[type=submit]")
    page.wait_for_selector(".messages li:has-text('Rate 70 mg/h (1 mg/kg/h, 70 mL/h)')")
    page.wait_for_selector("#chart .main-svg")
    shot("chart")

    page.click("form[action$='/event/stop/'] button")
    _state(page, "stopped")
    page.click("button:has-text('Begin recovery')")
    _state(page, "recovering")
    # The minimum observation is an hour: the clock moves on 70 minutes (server and page).
    traveller = time_machine.travel(timezone.now() + timedelta(minutes=70), tick=True)
    traveller.start()
    request.addfinalizer(traveller.stop)
    log_in(page, live_server, walk.c.cast.bob, PASSWORD)  # the idle log-off has run
    page.goto(f"{live_server.url}/sessions/{walk.s.pk}/")
    _state(page, "recovering")
    _vitals(page, systolic_bp_mmhg=128, heart_rate_per_min=76)
    page.check("form[action$='/observe/pain/'] input[value='5']")
    page.click("button:has-text('Record pain')")
    page.wait_for_selector(".messages li:has-text('Pain recorded')")
    _scores(page)
    gate = page.inner_text("[data-testid=gate]")
    assert "No Modified Aldrete assessment recorded yet" in gate
    assert "No Modified PADSS assessment recorded yet" in gate
    aldrete = "[data-testid=recovery-aldrete_modified_1995]"
    for item in ("activity", "respiration", "consciousness"):
        page.check(f"{aldrete} input[name=obs_{item}][value='2']")
    page.click(f"{aldrete} button[type=submit]")
    page.wait_for_selector(".messages li:has-text('10/10 recorded')")
    padss = "[data-testid=recovery-padss_modified]"
    page.check(f"{padss} input[name=alt-obs_ambulation][value='2']")
    page.check(f"{padss} input[name=alt-obs_nausea_vomiting][value='2']")
    page.click(f"{padss} button[type=submit]")
    page.wait_for_selector(".messages li:has-text('Modified Post-Anesthetic')")
    button = page.locator("[data-testid=discharge-button]")
    assert button.is_disabled()
    assert "instructions given" in button.inner_text()
    shot("gate")
    page.check("#discharge-form [name=instructions_given]")
    page.wait_for_selector("[data-testid=discharge-button]:has-text('Discharge'):not([disabled])")
    page.click("[data-testid=discharge-button]")
    _state(page, "discharged")
    entry = TimelineEntry.objects.get(session=walk.s, kind="discharge")
    assert entry.payload["gate"]["allowed"] is True
    assert Alarm.objects.filter(session=walk.s, ack__isnull=True).count() == 0
    shot("discharged")


def test_the_board_shows_every_chair_with_its_state_rate_and_alarms(
        transactional_db: Any, walk: Walk, live_server: Any, page: Any, shot: Any) -> None:
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.sessions import services
    from tests.web.sessions.conftest import Clinic, make_consent, make_order

    walk.t0 = timezone.now() - timedelta(minutes=70)
    walk.infusing()  # Ana: infusing since 40 min, vital signs last taken before the start
    walk.scores(49)
    walk.rate("70 mg/h", 50)
    walk.observe("vitals", 55, **{**VITALS, "spo2_percent": 89})  # an open alarm
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
