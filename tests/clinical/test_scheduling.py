"""The scheduling core: intervals, opening hours on the site's clock, free slots."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ketamine_clinic.clinical.scheduling import (
    Busy,
    Interval,
    PatientBookings,
    SiteCalendar,
    VisitLength,
    next_free_slots,
    propose_series,
    series_starts,
    visit_conflicts,
)

DENVER = ZoneInfo("America/Denver")
LENGTH = VisitLength(infusion_min=240, recovery_min=60)
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def at(d: date, h: int, m: int = 0) -> datetime:
    return datetime.combine(d, time(h, m), DENVER)


def calendar(busy: dict[str, tuple[Busy, ...]] | None = None, **kw: object) -> SiteCalendar:
    return SiteCalendar(tz=DENVER, hours={d: ((time(7), time(19)),) for d in range(5)},
                        chairs=("1", "2"), busy=busy or {}, **kw)  # type: ignore[arg-type]


def test_touching_intervals_do_not_overlap() -> None:
    a = Interval(at(date(2026, 3, 2), 8), at(date(2026, 3, 2), 13))
    b = Interval(at(date(2026, 3, 2), 13), at(date(2026, 3, 2), 18))
    assert not a.overlaps(b)
    assert not b.overlaps(a)
    assert a.overlaps(Interval(at(date(2026, 3, 2), 12, 59), at(date(2026, 3, 2), 14)))


@given(st.integers(0, 600), st.integers(1, 600), st.integers(0, 600), st.integers(1, 600))
def test_overlap_is_symmetric_and_matches_the_minute_sets(s1: int, l1: int, s2: int,
                                                          l2: int) -> None:
    base = datetime(2026, 3, 2, tzinfo=UTC)
    a = Interval(base + timedelta(minutes=s1), base + timedelta(minutes=s1 + l1))
    b = Interval(base + timedelta(minutes=s2), base + timedelta(minutes=s2 + l2))
    minutes_a, minutes_b = set(range(s1, s1 + l1)), set(range(s2, s2 + l2))
    assert a.overlaps(b) == b.overlaps(a) == bool(minutes_a & minutes_b)


def test_a_series_keeps_its_clock_time_across_the_daylight_saving_change() -> None:
    # US daylight saving time began on Sunday 8 March 2026.
    starts = series_starts(at(date(2026, 3, 6), 8), visits=4, spacing_days=1, tz=DENVER)
    assert [s.astimezone(DENVER).hour for s in starts] == [8, 8, 8, 8]
    offsets = {s.astimezone(DENVER).utcoffset() for s in starts}
    assert offsets == {timedelta(hours=-7), timedelta(hours=-6)}


def test_the_hours_are_judged_on_the_sites_clock() -> None:
    cal = calendar()
    monday = date(2026, 3, 2)
    ok, chair = visit_conflicts(cal, start=at(monday, 7), length=LENGTH, chair=None,
                                patient=PatientBookings(), now=NOW)
    assert ok == []
    assert chair == "1"
    late, _ = visit_conflicts(cal, start=at(monday, 14, 15), length=LENGTH, chair=None,
                              patient=PatientBookings(), now=NOW)
    assert [c.code for c in late] == ["closed"]
    assert "14:15–19:15" in late[0].message
    sunday, _ = visit_conflicts(cal, start=at(date(2026, 3, 1), 9), length=LENGTH, chair=None,
                                patient=PatientBookings(), now=NOW)
    assert "closed on Sundays" in sunday[0].message


def test_free_slots_are_the_next_starts_once_a_chair_comes_free() -> None:
    monday = date(2026, 3, 2)
    held = Interval(at(monday, 7), at(monday, 12))
    cal = calendar({"1": (Busy(held, "visit 1"),), "2": (Busy(held, "visit 1"),)})
    slots = next_free_slots(cal, after=at(monday, 0), length=LENGTH,
                            patient=PatientBookings(), now=NOW, count=2)
    local = [s.start.astimezone(DENVER) for s in slots]
    assert [(t.hour, t.minute) for t in local] == [(12, 0), (12, cal.slot_step_min)]
    assert {s.chair for s in slots} == {"1"}  # the first free chair at each start


def test_a_series_proposed_together_does_not_double_book_its_own_chair() -> None:
    monday = date(2026, 3, 2)
    cal = SiteCalendar(tz=DENVER, hours={d: ((time(7), time(19)),) for d in range(7)},
                       chairs=("1",))
    patient = PatientBookings(series_key="s1", spacing_days=0)
    proposals = propose_series(cal, requests=[(1, at(monday, 7), None), (2, at(monday, 8),
                                                                           None)],
                               length=LENGTH, patient=patient, now=NOW)
    assert proposals[0].ok
    assert proposals[0].chair == "1"
    assert {c.code for c in proposals[1].conflicts} >= {"no_chair"}
