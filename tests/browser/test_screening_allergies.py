"""Issue 11 finding 4 in a real browser: Ana's recorded ketamine allergy shows on her
patient page and makes her screening ineligible, with the reason on the result page."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.clinical.protocol import condition_vocabulary
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients import services as patients
from tests.browser.conftest import answer_budapest_met, log_in
from tests.web.protocols.conftest import ana_ready, standard  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_a_ketamine_allergy_shows_and_makes_the_screening_ineligible(
    transactional_db: Any, cast: Any, ana_ready: Any, standard: Any,  # noqa: F811
    live_server: Any, page: Any, shot: Any,
) -> None:
    patients.allergy_record(actor=Actor(user=cast.bob), patient=ana_ready,
                            substance="Ketalar", reaction="hives and wheeze",
                            severity="severe")
    page.set_viewport_size({"width": 1024, "height": 1366})  # the clinic's tablets
    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    page.goto(f"{live_server.url}/patients/{ana_ready.pk}/")
    alert = page.inner_text("#ketamine-allergy")
    assert "Allergy recorded to Ketalar (reaction: hives and wheeze): that is ketamine." in alert
    shot("patient-page-allergy")
    page.click("#screening a.button")
    page.wait_for_selector("h1:has-text('Eligibility screening')")
    page.check("#id_medications_complete")
    for cid in condition_vocabulary():
        page.check(f"input[name=cond_{cid}][value=no]")
    answer_budapest_met(page)
    page.click("button:has-text('Screen')")
    page.wait_for_selector("[data-decision='ineligible']")
    reasons = page.inner_text("#reasons")
    assert "Allergy recorded to Ketalar (reaction: hives and wheeze)" in reasons
    assert "Do not give ketamine" in reasons
    shot("screening-ineligible")
