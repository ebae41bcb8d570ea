"""The day's census in a real browser: three visits, one ready, one whose pre-visit
checklist the desk still has to ask (and then records on the visit page), one whose
consent was withdrawn; the chair board with its free chairs."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.scheduling import services
from ketamine_clinic.web.scheduling.checklist import checklist
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_the_day_page_shows_who_is_coming_and_what_is_not_ready(
        transactional_db: Any, sched: Any, live_server: Any, page: Any, shot: Any) -> None:
    from ketamine_clinic.web.documents.services import consent_withdraw
    from ketamine_clinic.web.protocols.models import Consent

    [bea] = sched.book(sched.bea_order, (1, sched.at(7), "2"))
    [ana] = sched.book(sched.ana_order, (1, sched.at(9), "1"))
    services.visit_checklist_record(actor=sched.actor(), visit=bea,
                                    answers=dict.fromkeys(checklist().keys, True),
                                    escort_name="Kim Lund")
    log_in(page, live_server, sched.cast.carol, "a long front desk passphrase")
    page.goto(f"{live_server.url}/today/denver/?day={sched.day.isoformat()}")
    page.wait_for_selector("#census")
    bea_row = page.locator(f"#census tr[data-visit='{bea.pk}']")
    ana_row = page.locator(f"#census tr[data-visit='{ana.pk}']")
    assert "✗" not in bea_row.inner_text()
    assert "not asked yet" in ana_row.inner_text()
    assert page.locator("#chairs tr[data-chair='1']").is_visible()
    shot("census")

    ana_row.locator("a:has-text('open the visit')").click()
    page.wait_for_selector("#checklist")
    for key in checklist().keys:
        page.check(f"input[name='item_{key}'][value='yes']")
    page.click("#save-checklist")
    page.wait_for_selector(".messages")
    assert "✗" not in page.inner_text("#readiness")
    shot("visit-ready")

    consent = Consent.objects.filter(patient=sched.bea).latest("signed_at")
    consent_withdraw(actor=sched.actor(sched.cast.alice), consent=consent, reason="declined")
    page.goto(f"{live_server.url}/today/denver/?day={sched.day.isoformat()}")
    text = page.locator(f"#census tr[data-visit='{bea.pk}']").inner_text()
    assert "no consent in force" in text
    shot("census-consent-withdrawn")
