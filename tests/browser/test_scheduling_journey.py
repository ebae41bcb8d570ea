"""The front desk books a series in a real browser and resolves a conflict: one proposed
visit meets a chair already taken, the page names it and offers free slots, the desk picks
one and the whole series is booked; the day calendar shows the chairs and free time."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.scheduling.models import Visit
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_the_front_desk_books_a_series_and_resolves_a_conflict(
        transactional_db: Any, sched: Any, live_server: Any, page: Any, shot: Any) -> None:
    # One chair in use; Bea holds it on the third day of Ana's series at 08:00.
    from ketamine_clinic.web.scheduling import services
    from ketamine_clinic.web.scheduling.models import Chair

    services.chair_set_active(actor=sched.actor(sched.cast.dave),
                              chair=Chair.objects.get(code="2"), active=False)
    sched.book(sched.bea_order, (1, sched.at(8, days=2), "1"))

    log_in(page, live_server, sched.cast.carol, "a long front desk passphrase")
    page.goto(f"{live_server.url}/patients/{sched.cast.ana.pk}/")
    page.click("#book-visits")
    page.fill("#id_first_day", sched.day.isoformat())
    page.fill("#id_start_time", "08:00")
    page.click("#propose")
    page.wait_for_selector("#proposals")
    assert page.is_visible("#has-conflicts")
    row = page.locator("#proposals tr[data-visit='3']")
    assert "No chair is free for the whole of 08:00–13:00 (chair 1: visit 1 of Bea Lund" in (
        row.inner_text())
    shot("conflict")
    # Pick the first free slot offered for visit 3 (after Bea's visit).
    row.locator("input[type=radio]").first.check()
    page.click("#book")
    page.wait_for_selector("#visits")
    shot("booked")
    visits = list(Visit.objects.filter(patient=sched.cast.ana).order_by("number"))
    assert [v.number for v in visits] == list(range(1, sched.ana_order.series.planned_sessions
                                                     + 1))
    third = visits[2]
    bea = Visit.objects.get(patient=sched.bea)
    assert third.starts_at >= bea.ends_at  # the chosen slot is after Bea's visit

    page.goto(f"{live_server.url}/calendar/denver/day/"
              f"{(sched.day).isoformat()}/")
    assert "Ruiz, Ana" in page.inner_text("#day")
    assert page.is_visible("#free-chairs")
    shot("day")
