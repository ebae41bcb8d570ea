"""Screening in a real browser: a nurse screens Ana from her patient page, a physician
overrides a reviewable reason, and a change in the registry puts the screening out of date."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.clinical.protocol import condition_vocabulary
from ketamine_clinic.web.protocols.models import Screening, ScreeningOverride
from tests.browser.conftest import answer_budapest_met, log_in
from tests.web.protocols.conftest import ana_ready, standard  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def log_out(page: Any, live_server: Any) -> None:
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{live_server.url}/login/")


def test_a_nurse_screens_a_physician_overrides_and_a_new_medication_outdates_it(
    transactional_db: Any, cast: Any, ana_ready: Any, standard: Any,  # noqa: F811
    live_server: Any, page: Any, shot: Any,
) -> None:
    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    page.goto(f"{live_server.url}/patients/{ana_ready.pk}/")
    assert "Not screened yet" in page.inner_text("#screening")
    page.click("#screening a.button")
    page.wait_for_selector("h1:has-text('Eligibility screening')")
    facts = page.inner_text("#registry-facts")
    assert "68.5 kg" in facts
    assert "G90.512" in facts
    assert "gabapentin" in facts
    # Everything starts as "not known".
    assert page.locator("input[type=radio][value=unknown]:checked").count() == len(
        condition_vocabulary()) + 2
    shot("form-as-opened")

    page.check("#id_medications_complete")
    for cid in condition_vocabulary():
        answer = "yes" if cid == "history_of_psychosis" else "no"
        page.check(f"input[name=cond_{cid}][value={answer}]")
    answer_budapest_met(page)
    shot("form-answered")
    page.click("button:has-text('Screen')")
    page.wait_for_selector("[data-decision='needs-physician-review']")
    reasons = page.inner_text("#reasons")
    assert "psychosis_history" in reasons
    assert "lft_repeated_infusions" in reasons
    assert "Override with a written justification" not in reasons  # a nurse cannot
    shot("decision-needs-review")
    s = Screening.objects.get(patient=ana_ready)
    assert s.protocol_version_id == standard.pk
    assert s.facts["conditions"] == ["history_of_psychosis"]
    log_out(page, live_server)

    log_in(page, live_server, cast.alice, "a long physician passphrase")
    page.goto(f"{live_server.url}/screenings/{s.pk}/")
    row = page.locator("tr[data-rule=psychosis_history]")
    row.locator("summary").click()
    row.locator("textarea").fill("One episode in 2004 after a head injury; stable since; "
                                 "discussed with her psychiatrist.")
    row.locator("button:has-text('Record override')").click()
    page.wait_for_selector("[data-decision='eligible-with-conditions']")
    assert "Overridden by Alice" in page.inner_text("tr[data-rule=psychosis_history]")
    assert "the screening itself said needs-physician-review" in page.inner_text("#decision")
    shot("after-override")
    assert ScreeningOverride.objects.get(screening=s).physician == cast.alice

    page.goto(f"{live_server.url}/patients/{ana_ready.pk}/")
    panel = page.inner_text("#screening")
    assert "eligible-with-conditions" in panel
    assert "current" in panel
    page.locator("#screening").screenshot(path=str(shot("patient-page").with_name(
        "screening-panel-current.png")))

    page.click("#medications summary:has-text('Add a medication')")
    page.fill("#medications input[name=name]", "clarithromycin")
    page.click("#medications button:has-text('Record medication')")
    page.wait_for_selector("#screening .out-of-date")
    assert "screening out of date: the patient's facts have changed since the screening " \
        "(medications)" in page.inner_text("#screening")
    shot("out-of-date")
