"""Booking rules: every conflict named, a series all or nothing, cancel and reschedule, the
series count, and the start of a visit opening its session."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.scheduling import selectors, services
from ketamine_clinic.web.scheduling.models import SiteClosure, Visit, VisitEvent


def _codes(exc: services.BookingConflict, number: int) -> set[str]:
    [p] = [p for p in exc.proposals if p.number == number]
    return {c.code for c in p.conflicts}


def test_a_series_books_every_visit_a_day_apart_holding_the_chair_for_infusion_and_recovery(
        sched: Any) -> None:
    visits = sched.series(sched.ana_order, sched.at(8))
    planned = sched.ana_order.series.planned_sessions
    assert [v.number for v in visits] == list(range(1, planned + 1))
    days = [timezone.localtime(v.starts_at, sched.tz).date() for v in visits]
    assert [(b - a).days for a, b in itertools.pairwise(days)] == [1] * (planned - 1)
    length = timedelta(minutes=sched.length_min(sched.ana_order))
    assert all(v.ends_at - v.starts_at == length for v in visits)
    assert all(v.infusion_ends_at - v.starts_at == timedelta(
        minutes=sched.ana_order.planned_duration_min) for v in visits)
    assert VisitEvent.objects.filter(kind="booked").count() == planned


def test_a_taken_chair_is_named_with_the_next_free_slots_and_nothing_is_booked(
        sched: Any) -> None:
    sched.book(sched.ana_order, (1, sched.at(8), "1"))
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(sched.bea_order, (1, sched.at(9), "1"), (2, sched.at(9, days=1), "1"))
    assert _codes(caught.value, 1) == {"chair_taken"}
    assert "chair 1 is booked 08:00" in str(caught.value)
    [p] = [p for p in caught.value.proposals if p.number == 1]
    assert p.alternatives
    assert all(
        not (a.chair == "1" and a.start < sched.at(8) + timedelta(
            minutes=sched.length_min(sched.ana_order))) for a in p.alternatives)
    assert not Visit.objects.filter(patient=sched.bea).exists()  # visit 2 was free: not kept


def test_with_every_chair_taken_the_visit_has_no_chair(sched: Any) -> None:
    sched.book(sched.ana_order, (1, sched.at(8), "1"))
    sched.book(sched.bea_order, (1, sched.at(8), "2"))
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services as patients
    from tests.web.sessions.conftest import make_consent, make_order

    cy = patients.patient_register(actor=Actor(user=sched.cast.carol), site=sched.cast.denver,
                                   mrn="DEN-3", given_name="Cy", family_name="Moe",
                                   date_of_birth=timezone.localdate() - timedelta(days=30 * 365),
                                   sex_at_birth="male")
    order = make_order(sched.cast, cy, sched.pv)
    make_consent(sched.cast, cy, sched.pv)
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(order, (1, sched.at(10), None))
    assert _codes(caught.value, 1) == {"no_chair"}


def test_two_visits_of_an_every_day_series_on_one_day_are_refused(sched: Any) -> None:
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(sched.ana_order, (1, sched.at(7), "1"), (2, sched.at(13), "2"))
    assert _codes(caught.value, 2) == {"same_day"}


def test_a_visit_closer_than_the_series_spacing_is_refused(sched: Any) -> None:
    series = sched.ana_order.series
    series.spacing_days = 3
    series.save()
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(sched.ana_order, (1, sched.at(8), None), (2, sched.at(8, days=2), None))
    assert _codes(caught.value, 2) == {"spacing"}


def test_a_patient_cannot_be_in_two_overlapping_visits(sched: Any) -> None:
    sched.book(sched.ana_order, (1, sched.at(8), "1"))
    # A second verified order (a new series) for Ana, overlapping her booked visit.
    from tests.web.sessions.conftest import make_order

    other = make_order(sched.cast, sched.cast.ana, sched.pv)
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(other, (1, sched.at(10), "2"))
    assert "patient_overlap" in _codes(caught.value, 1)


def test_a_visit_outside_opening_hours_or_on_a_closed_day_is_refused(sched: Any) -> None:
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(sched.ana_order, (1, sched.at(16), None))  # ends after 19:00
    assert _codes(caught.value, 1) == {"closed"}
    assert "outside the opening hours" in str(caught.value)
    SiteClosure.objects.create(site=sched.cast.denver, day=sched.day, reason="staff training")
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(sched.ana_order, (1, sched.at(8), None))
    assert "staff training" in str(caught.value)


def test_a_past_date_is_refused(sched: Any) -> None:
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(sched.ana_order, (1, sched.at(8, days=-5), None))
    assert "past" in _codes(caught.value, 1)


def test_a_visit_before_the_order_was_verified_or_after_the_screening_is_refused(
        sched: Any) -> None:
    order = sched.ana_order
    order.verified_at = sched.at(12)
    order.save()
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(order, (1, sched.at(8), None))
    assert _codes(caught.value, 1) == {"too_early"}
    assert "the order was verified" in str(caught.value)
    last = order.series.screening.valid_until
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(order, (1, sched.at(8, days=(last - sched.day).days + 1), None))
    assert "too_late" in _codes(caught.value, 1)


def test_a_visit_before_any_consent_cannot_be_booked(sched: Any) -> None:
    from ketamine_clinic.web.protocols.models import Consent

    Consent.objects.filter(patient=sched.bea).delete()
    with pytest.raises(UsageError, match="no consent in force"):
        sched.book(sched.bea_order, (1, sched.at(8), None))
    assert not Visit.objects.filter(patient=sched.bea).exists()


def test_a_series_longer_than_the_order_is_refused(sched: Any) -> None:
    planned = sched.ana_order.series.planned_sessions
    with pytest.raises(UsageError, match=f"has {planned} planned"):
        sched.series(sched.ana_order, sched.at(8), visits=planned + 1)
    with pytest.raises(UsageError, match="cannot be booked"):
        sched.book(sched.ana_order, (planned + 1, sched.at(8), None))
    assert not Visit.objects.exists()


def test_a_cancelled_visit_is_no_session_and_its_number_can_be_booked_again(sched: Any) -> None:
    [v1, v2] = sched.series(sched.ana_order, sched.at(8), visits=2)
    services.visit_cancel(actor=sched.actor(), visit=v1, reason="patient_request", note="ill")
    v1.refresh_from_db()
    assert v1.status == "cancelled"
    assert v1.session is None
    assert selectors.series_open_numbers(sched.ana_order)[0] == 1
    session = services.visit_start(actor=sched.actor(sched.cast.bob), visit=v2)
    # The first session of the series: the cancelled visit did not take a place.
    assert session.visit_number == 1
    assert selectors.infusions_given(sched.ana_order.series) == 0  # not infused yet
    [again] = sched.book(sched.ana_order, (1, sched.at(8, days=2), None))
    assert again.number == 1
    assert again.status == "booked"
    with pytest.raises(UsageError, match="cancelled"):
        services.visit_cancel(actor=sched.actor(), visit=v1, reason="no_show")
    with pytest.raises(UsageError, match="reason"):
        services.visit_cancel(actor=sched.actor(), visit=again, reason="bored")


def test_the_series_count_counts_infusions_actually_given(sched: Any) -> None:
    from tests.web.sessions.conftest import Clinic, Walk

    [v1, v2] = sched.series(sched.ana_order, sched.at(8), visits=2)
    session = services.visit_start(actor=sched.actor(sched.cast.bob), visit=v1)
    clinic = Clinic(sched.cast, sched.pv, sched.ana_order.series, sched.ana_order, session,
                    None)
    Walk(clinic).infusing()
    services.visit_cancel(actor=sched.actor(), visit=v2, reason="no_show")
    assert selectors.infusions_given(sched.ana_order.series) == 1


def test_reschedule_moves_the_visit_and_a_conflict_leaves_it_where_it_was(sched: Any) -> None:
    [ana] = sched.book(sched.ana_order, (1, sched.at(8), "1"))
    sched.book(sched.bea_order, (1, sched.at(8), "2"))
    moved = services.visit_reschedule(actor=sched.actor(), visit=ana, start=sched.at(9),
                                      chair="1", reason="patient asked for later")
    assert timezone.localtime(moved.starts_at, sched.tz).hour == 9
    with pytest.raises(services.BookingConflict):
        services.visit_reschedule(actor=sched.actor(), visit=moved, start=sched.at(10),
                                  chair="2", reason="swap")
    moved.refresh_from_db()
    assert moved.chair.code == "1"
    assert timezone.localtime(moved.starts_at, sched.tz).hour == 9
    assert [e.kind for e in moved.events.all()] == ["booked", "rescheduled"]
    with pytest.raises(UsageError, match="reason"):
        services.visit_reschedule(actor=sched.actor(), visit=moved, start=sched.at(11),
                                  reason=" ")


def test_a_retired_chair_is_no_longer_offered(sched: Any) -> None:
    from ketamine_clinic.web.scheduling.models import Chair

    chair2 = Chair.objects.get(site=sched.cast.denver, code="2")
    services.chair_set_active(actor=sched.actor(sched.cast.dave), chair=chair2, active=False)
    sched.book(sched.ana_order, (1, sched.at(8), "1"))
    with pytest.raises(services.BookingConflict) as caught:
        sched.book(sched.bea_order, (1, sched.at(8), "2"))
    assert "not a chair of this site" in str(caught.value)
