"""The visit's billing summary in a real browser: a charted 151-minute infusion with its
premedication, opened from the visit's page by the front desk; printable, with its CSV."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.scheduling import services
from tests.browser.conftest import log_in
from tests.web.sessions.conftest import Clinic, Walk

pytestmark = pytest.mark.browser


def test_the_desk_opens_the_billing_summary_of_a_visit(
        transactional_db: Any, sched: Any, live_server: Any, page: Any, shot: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    [visit] = services.visits_book(
        actor=sched.actor(), order=sched.ana_order,
        requests=[services.VisitRequest(1, sched.at(8), "1")])
    session = services.visit_start(actor=sched.actor(sched.cast.bob), visit=visit)
    # Chart it as it happened five hours ago (the session's clock is its timeline's).
    walk = Walk(Clinic(sched.cast, sched.pv, sched.ana_order.series, sched.ana_order,
                       session, None), t0=timezone.now() - timedelta(hours=5))
    walk.infusing()
    walk.event("stop", 30 + 151)

    log_in(page, live_server, sched.cast.carol, "a long front desk passphrase")
    page.goto(f"{live_server.url}/visits/{visit.pk}/")
    page.click("#billing")
    page.wait_for_selector("#procedures")
    assert page.locator("#procedures tr[data-code='96366'] td").nth(2).inner_text() == "2"
    assert "J3490" in page.inner_text("#drugs")
    assert "G90.512" in page.inner_text("#diagnoses")
    shot("billing")
    with page.expect_download() as download:
        page.click("#csv")
    assert download.value.suggested_filename == f"billing-session-{session.pk}.csv"
