"""The scheduling pages through the test client: who may do what, the calendar, the
booking form with its conflicts, a visit's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.scheduling.models import Visit


def _propose(client: Client, sched: Any, order: Any, hour: int = 8, **extra: Any) -> Any:
    return client.post(reverse("book_series", args=[order.patient_id]), {
        "action": "propose", "order": order.pk, "first_day": sched.day.isoformat(),
        "start_time": f"{hour:02d}:00", "chair": "", **extra})


@pytest.mark.parametrize(("role", "status"), [("front_desk", 200), ("clinic_admin", 200),
                                         ("nurse", 403), ("physician", 403), ("auditor", 403)])
def test_only_the_front_desk_and_administrators_book(sched: Any, client: Client, role: str,
                                                     status: int) -> None:
    client.force_login(sched.cast.by_role()[role])
    assert client.get(reverse("book_series", args=[sched.cast.ana.pk])).status_code == status


@pytest.mark.parametrize("role", ["front_desk", "nurse", "physician", "clinic_admin"])
def test_staff_of_the_site_see_the_calendar(sched: Any, client: Client, role: str) -> None:
    sched.series(sched.ana_order, sched.at(8), visits=1)
    client.force_login(sched.cast.by_role()[role])
    day = client.get(reverse("calendar_day", args=["denver", sched.day.isoformat()]))
    assert day.status_code == 200
    assert "Ruiz, Ana" in day.content.decode()
    week = client.get(reverse("calendar_week", args=["denver", sched.day.isoformat()]))
    assert week.status_code == 200


def test_a_user_of_another_site_sees_neither_its_calendar_nor_its_visits(
        sched: Any, client: Client) -> None:
    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    client.force_login(sched.cast.oscar)
    assert client.get(reverse("calendar_day", args=["denver", "today"])).status_code == 404
    assert client.get(reverse("visit_detail", args=[visit.pk])).status_code == 404


def test_the_day_shows_free_chairs_and_free_stretches(sched: Any, client: Client) -> None:
    sched.book(sched.ana_order, (1, sched.at(8), "1"))
    client.force_login(sched.cast.bob)
    html = client.get(reverse("calendar_day", args=["denver", sched.day.isoformat()])
                      ).content.decode()
    assert "1 of 2 chairs free all day" in html
    end = sched.at(8).hour * 60 + sched.length_min(sched.ana_order)
    assert f"{end // 60:02d}:{end % 60:02d}–19:00" in html  # chair 1 free after the visit
    assert "07:00–19:00" in html  # chair 2 free all day


def test_proposing_shows_each_visit_and_booking_books_them_all(sched: Any,
                                                               client: Client) -> None:
    client.force_login(sched.cast.carol)
    html = _propose(client, sched, sched.ana_order).content.decode()
    assert 'id="all-free"' in html
    planned = sched.ana_order.series.planned_sessions
    assert html.count('name="pick-') >= planned
    assert not Visit.objects.exists()  # proposing writes nothing
    picks = {}
    for n in range(1, planned + 1):
        start = sched.at(8, days=n - 1).isoformat()
        picks[f"pick-{n}"] = f"{start}|"
    response = client.post(reverse("book_series", args=[sched.cast.ana.pk]),
                           {"action": "book", "order": sched.ana_order.pk, **picks})
    assert response.status_code == 302
    assert Visit.objects.filter(patient=sched.cast.ana).count() == planned


def test_a_conflict_is_named_on_the_page_with_slots_to_pick(sched: Any, client: Client) -> None:
    sched.book(sched.ana_order, (1, sched.at(8), "1"))
    client.force_login(sched.cast.carol)
    html = _propose(client, sched, sched.bea_order, chair="1").content.decode()
    assert 'id="has-conflicts"' in html
    assert "Chair 1 is booked 08:00" in html
    assert "leave unbooked for now" in html


def test_a_stale_pick_is_refused_whole_and_the_page_says_why(sched: Any,
                                                             client: Client) -> None:
    client.force_login(sched.cast.carol)
    # Someone else takes both chairs at 08:00 between the proposal and the booking.
    sched.book(sched.ana_order, (1, sched.at(8), "1"))
    sched.book(sched.bea_order, (1, sched.at(8), "2"))
    from ketamine_clinic.web.orders.models import Order
    from tests.web.sessions.conftest import make_order

    order = make_order(sched.cast, sched.cast.ana, sched.pv)
    assert Order.objects.filter(patient=sched.cast.ana).count() == 2
    response = client.post(reverse("book_series", args=[sched.cast.ana.pk]), {
        "action": "book", "order": order.pk,
        "pick-1": f"{sched.at(8, days=1).isoformat()}|1",
        "pick-2": f"{sched.at(8, days=1).isoformat()}|2"})
    assert response.status_code == 409
    assert "Nothing was booked" in response.content.decode()
    assert not Visit.objects.filter(order=order).exists()


def test_the_desk_cancels_and_reschedules_on_the_visit_page(sched: Any, client: Client) -> None:
    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    client.force_login(sched.cast.carol)
    url = reverse("visit_reschedule", args=[visit.pk])
    assert client.post(url, {"day": sched.day.isoformat(), "start_time": "10:00", "chair": "",
                             "reason": "later bus"}).status_code == 302
    bad = client.post(url, {"day": sched.day.isoformat(), "start_time": "17:00", "chair": "",
                            "reason": "later"})
    assert bad.status_code == 409
    assert "outside the opening hours" in bad.content.decode()
    cancel = client.post(reverse("visit_cancel", args=[visit.pk]), {"reason": "no_show"})
    assert cancel.status_code == 302
    visit.refresh_from_db()
    assert visit.status == "cancelled"
    assert visit.cancel_reason == "no_show"


def test_a_nurse_opens_the_session_of_a_booked_visit(sched: Any, client: Client) -> None:
    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    client.force_login(sched.cast.carol)
    assert client.post(reverse("visit_start", args=[visit.pk])).status_code == 403
    client.force_login(sched.cast.bob)
    response = client.post(reverse("visit_start", args=[visit.pk]))
    visit.refresh_from_db()
    assert visit.session is not None
    assert response.status_code == 302
    assert response["Location"].endswith(
        f"/sessions/{visit.session.pk}/")


def test_the_patient_page_lists_the_visits(sched: Any, client: Client) -> None:
    sched.series(sched.ana_order, sched.at(8), visits=2)
    client.force_login(sched.cast.carol)
    html = client.get(reverse("patient_detail", args=[sched.cast.ana.pk])).content.decode()
    assert 'id="visits"' in html
    assert html.count("data-visit=") == 2
    assert 'id="book-visits"' in html  # three visits are still open


def test_only_administrators_set_up_chairs_and_hours(sched: Any, client: Client) -> None:
    url = reverse("site_setup", args=["denver"])
    client.force_login(sched.cast.carol)
    assert client.get(url).status_code == 403
    client.force_login(sched.cast.dave)
    assert client.post(url, {"action": "chair", "code": "3"}).status_code == 302
    bad = client.post(url, {"action": "hours", "hours-0": "18:00-08:00"})
    assert "opens at 18:00 but closes at 08:00" in bad.content.decode()
    ok = client.post(url, {"action": "hours", "hours-0": "08:00-12:00, 13:00-17:00"})
    assert ok.status_code == 302
    from ketamine_clinic.web.scheduling.models import OpeningHours

    assert OpeningHours.objects.filter(site=sched.cast.denver).count() == 2
