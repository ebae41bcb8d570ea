"""Chair scheduling: which proposed visits fit a site's calendar, and the next free slots.

Pure functions over frozen dataclasses. Every instant is an aware ``datetime`` (the web
shell passes UTC); opening hours, closed days and "the same day" are judged on the site's
own clock (``SiteCalendar.tz``). A visit occupies its chair from the booked start until
the planned infusion **plus** the protocol's minimum observation time are over.

Conflict rules (each a :class:`Conflict` with a code and a sentence):

``past``            the start lies before now;
``too_early``       before the earliest allowed start (order verified, consent signed);
``too_late``        after the last allowed day (the screening's validity);
``closed``          the site is closed that day, or the visit does not fit its hours;
``chair_taken``     the requested chair is booked for part of the time;
``no_chair``        no chair of the site is free for the whole time;
``patient_overlap`` the patient is in another visit for part of the time;
``same_day``        the patient already has a visit that day;
``spacing``         closer to another visit of the same series than the series' spacing.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo


@dataclass(frozen=True, order=True)
class Interval:
    """``[start, end)``, aware datetimes."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Busy:
    """Something already booked: a chair's or the patient's time, with a label for
    messages ("visit 2 of Ana Ruiz")."""

    interval: Interval
    label: str = ""
    series_key: str = ""
    chair: str = ""


@dataclass(frozen=True)
class SiteCalendar:
    """A site's chairs, weekly hours (weekday 0 = Monday, local times), closed dates and
    what each chair already holds (sorted by start)."""

    tz: ZoneInfo
    hours: Mapping[int, tuple[tuple[time, time], ...]]
    chairs: tuple[str, ...]
    busy: Mapping[str, tuple[Busy, ...]] = field(default_factory=dict)
    closed: Mapping[date, str] = field(default_factory=dict)
    slot_step_min: int = 15

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def hours_problem(self, iv: Interval) -> str | None:
        """Why ``iv`` does not fit the opening hours, or None."""
        start, end = self.local(iv.start), self.local(iv.end)
        day = start.date()
        if day in self.closed:
            return f"the site is closed on {_day(day)} ({self.closed[day]})"
        windows = self.hours.get(day.weekday(), ())
        if not windows:
            return f"the site is closed on {day:%A}s"
        for opens, closes in windows:
            w_start = datetime.combine(day, opens, self.tz)
            w_end = datetime.combine(day, closes, self.tz)
            if w_start <= start and end <= w_end:
                return None
        shown = ", ".join(f"{o:%H:%M}–{c:%H:%M}" for o, c in windows)
        return (f"{start:%H:%M}–{end:%H:%M} is outside the opening hours on "
                f"{day:%A}s ({shown})")

    def chair_busy(self, chair: str, iv: Interval) -> Busy | None:
        """The first booking of ``chair`` that overlaps ``iv``, or None."""
        rows = self.busy.get(chair, ())
        # Rows are sorted by start: none starting at or after iv.end can overlap, nor any
        # starting more than the longest booking before iv.start.
        starts = self._starts.get(chair, [])
        hi = bisect.bisect_left(starts, iv.end)
        lo = bisect.bisect_left(starts, iv.start - self._longest)
        for b in rows[lo:hi]:
            if b.interval.end > iv.start:
                return b
        return None

    @cached_property
    def _starts(self) -> dict[str, list[datetime]]:
        return {c: [b.interval.start for b in rows] for c, rows in self.busy.items()}

    @cached_property
    def _longest(self) -> timedelta:
        return max((b.interval.end - b.interval.start for rows in self.busy.values()
                    for b in rows), default=timedelta(0))

    def free_chairs(self, iv: Interval) -> list[str]:
        return [c for c in self.chairs if self.chair_busy(c, iv) is None]


@dataclass(frozen=True)
class Conflict:
    code: str
    message: str


@dataclass(frozen=True)
class Slot:
    start: datetime
    chair: str


@dataclass(frozen=True)
class Proposal:
    """One visit as proposed: its times, the chair it gets (None when it cannot be
    booked as asked), what is in the way and the next free slots."""

    number: int
    start: datetime
    infusion_end: datetime
    end: datetime
    chair: str | None
    conflicts: tuple[Conflict, ...]
    alternatives: tuple[Slot, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.conflicts


@dataclass(frozen=True)
class PatientBookings:
    """The patient's other booked visits and the bounds a series' visits must keep."""

    busy: tuple[Busy, ...] = ()
    earliest: datetime | None = None
    earliest_reason: str = ""
    last_day: date | None = None
    last_day_reason: str = ""
    series_key: str = ""
    spacing_days: int = 0


@dataclass(frozen=True)
class VisitLength:
    """How long a visit holds its chair [min]: the planned infusion, then observation."""

    infusion_min: int
    recovery_min: int

    @property
    def total(self) -> timedelta:
        return timedelta(minutes=self.infusion_min + self.recovery_min)


def _day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def _hm(cal: SiteCalendar, at: datetime) -> str:
    return f"{cal.local(at):%H:%M}"


def visit_conflicts(cal: SiteCalendar, *, start: datetime, length: VisitLength,
                    chair: str | None, patient: PatientBookings, now: datetime,
                    also: Sequence[Busy] = ()) -> tuple[list[Conflict], str | None]:
    """What stops a visit at ``start`` (in ``chair``, or any free chair) and the chair it
    would get. ``also`` holds visits proposed alongside it (the rest of its series)."""
    iv = Interval(start, start + length.total)
    local = cal.local(start)
    found: list[Conflict] = []
    if start < now:
        found.append(Conflict("past", f"{_day(local.date())} {local:%H:%M} is in the past"))
    if patient.earliest is not None and start < patient.earliest:
        e = cal.local(patient.earliest)
        found.append(Conflict("too_early", f"it is before {patient.earliest_reason} "
                                           f"({_day(e.date())} {e:%H:%M})"))
    if patient.last_day is not None and local.date() > patient.last_day:
        found.append(Conflict("too_late", f"it is after {patient.last_day_reason} "
                                          f"({_day(patient.last_day)})"))
    problem = cal.hours_problem(iv)
    if problem:
        found.append(Conflict("closed", problem))
    chosen: str | None = None
    if chair is not None:
        if chair not in cal.chairs:
            found.append(Conflict("chair_taken", f"chair {chair} is not a chair of this site"))
        else:
            taken = cal.chair_busy(chair, iv) or _first_overlap(
                [b for b in also if b.chair == chair], iv)
            if taken is not None:
                found.append(Conflict("chair_taken", (
                    f"chair {chair} is booked {_hm(cal, taken.interval.start)}–"
                    f"{_hm(cal, taken.interval.end)}")))
            else:
                chosen = chair
    else:
        proposed_chairs = {b.chair for b in also if b.interval.overlaps(iv)}
        free = [c for c in cal.free_chairs(iv) if c not in proposed_chairs]
        if free:
            chosen = free[0]
        else:
            holders = [b for c in cal.chairs
                       if (b := cal.chair_busy(c, iv) or _first_overlap(
                           [a for a in also if a.chair == c], iv)) is not None]
            shown = "; ".join(f"chair {b.chair}: {b.label} {_hm(cal, b.interval.start)}–"
                              f"{_hm(cal, b.interval.end)}" for b in holders)
            found.append(Conflict("no_chair", (
                f"no chair is free for the whole of {_hm(cal, iv.start)}–{_hm(cal, iv.end)}"
                + (f" ({shown})" if shown else ""))))
    found.extend(_patient_conflicts(cal, iv, patient, also))
    return found, (chosen if not found else None)


def _first_overlap(rows: Sequence[Busy], iv: Interval) -> Busy | None:
    return next((b for b in rows if b.interval.overlaps(iv)), None)


def _patient_conflicts(cal: SiteCalendar, iv: Interval, patient: PatientBookings,
                       also: Sequence[Busy]) -> list[Conflict]:
    found: list[Conflict] = []
    day = cal.local(iv.start).date()
    for b in (*patient.busy, *(a for a in also if a.series_key)):
        if b.interval.overlaps(iv):
            found.append(Conflict("patient_overlap", (
                f"the patient is booked for {b.label} "
                f"{_hm(cal, b.interval.start)}–{_hm(cal, b.interval.end)}")))
            continue
        other_day = cal.local(b.interval.start).date()
        if other_day == day:
            found.append(Conflict("same_day", f"the patient already has {b.label} that day"))
        elif (patient.spacing_days and b.series_key == patient.series_key
              and abs((other_day - day).days) < patient.spacing_days):
            found.append(Conflict("spacing", (
                f"{b.label} on {_day(other_day)} is closer than the series' spacing of "
                f"{patient.spacing_days} days")))
    return found


def _blocked_days(cal: SiteCalendar, patient: PatientBookings,
                  also: Sequence[Busy]) -> set[date]:
    """Local days on which the patient may not have another visit: days they already
    have one, and days too close to a visit of the same series."""
    days: set[date] = set()
    for b in (*patient.busy, *(a for a in also if a.series_key)):
        day = cal.local(b.interval.start).date()
        days.add(day)
        if patient.spacing_days and b.series_key == patient.series_key:
            for k in range(1, patient.spacing_days):
                days.update((day - timedelta(days=k), day + timedelta(days=k)))
    return days


def next_free_slots(cal: SiteCalendar, *, after: datetime, length: VisitLength,
                    patient: PatientBookings, now: datetime, count: int = 3,
                    horizon_days: int = 14, also: Sequence[Busy] = (),
                    per_day: int | None = None) -> tuple[Slot, ...]:
    """The first ``count`` starts from ``after`` (on the slot grid, within the opening
    hours, over ``horizon_days`` local days) at which the visit has no conflict; with
    ``per_day``, at most that many on one day (so that a choice spans several days).

    Days the patient may not come are skipped whole; each candidate is then checked for
    a free chair, and every slot returned passes :func:`visit_conflicts`."""
    step = timedelta(minutes=cal.slot_step_min)
    first_day = cal.local(max(after, now)).date()
    blocked = _blocked_days(cal, patient, also)
    slots: list[Slot] = []
    for offset in range(horizon_days + 1):
        day = first_day + timedelta(days=offset)
        if day in cal.closed or day in blocked:
            continue
        if patient.last_day is not None and day > patient.last_day:
            break
        today = 0
        for opens, closes in cal.hours.get(day.weekday(), ()):
            t = datetime.combine(day, opens, cal.tz)
            last = datetime.combine(day, closes, cal.tz) - length.total
            while t <= last and (per_day is None or today < per_day):
                if t >= after and t >= now and (patient.earliest is None
                                                or t >= patient.earliest):
                    iv = Interval(t, t + length.total)
                    taken = {b.chair for b in also if b.interval.overlaps(iv)}
                    if any(c not in taken and cal.chair_busy(c, iv) is None
                           for c in cal.chairs):
                        conflicts, chair = visit_conflicts(cal, start=t, length=length,
                                                           chair=None, patient=patient,
                                                           now=now, also=also)
                        if not conflicts and chair is not None:
                            slots.append(Slot(t, chair))
                            today += 1
                            if len(slots) == count:
                                return tuple(slots)
                t += step
    return tuple(slots)


def series_starts(first: datetime, *, visits: int, spacing_days: int,
                  tz: ZoneInfo) -> list[datetime]:
    """Starts of ``visits`` visits from ``first``, ``spacing_days`` local days apart at the
    same local clock time (a daylight-saving change keeps the wall-clock time)."""
    local = first.astimezone(tz)
    return [datetime.combine(local.date() + timedelta(days=i * spacing_days),
                             local.timetz().replace(tzinfo=None), tz)
            for i in range(visits)]


def propose_series(cal: SiteCalendar, *, requests: Sequence[tuple[int, datetime, str | None]],
                   length: VisitLength, patient: PatientBookings, now: datetime,
                   alternatives: int = 3) -> list[Proposal]:
    """Check each requested visit ``(number, start, chair or None)`` against the calendar,
    the patient's other visits and the series' own other proposals; offer, for each one
    that does not fit, the next free slots (one a day, from the asked day on) that fit
    beside every visit of the series that does."""
    checked: list[tuple[int, datetime, list[Conflict], str | None]] = []
    accepted: list[Busy] = []
    for number, start, chair in requests:
        conflicts, chosen = visit_conflicts(cal, start=start, length=length, chair=chair,
                                            patient=patient, now=now, also=list(accepted))
        checked.append((number, start, conflicts, chosen))
        if chosen is not None:
            accepted.append(Busy(Interval(start, start + length.total),
                                 label=f"visit {number} of this series", chair=chosen,
                                 series_key=patient.series_key or "proposed"))
    proposals = []
    for number, start, conflicts, chosen in checked:
        alts: tuple[Slot, ...] = ()
        if conflicts:
            day_start = datetime.combine(cal.local(start).date(), time(0), cal.tz)
            alts = next_free_slots(cal, after=day_start, length=length, patient=patient,
                                   now=now, count=alternatives, also=accepted, per_day=1)
        proposals.append(Proposal(
            number=number, start=start, infusion_end=start + timedelta(
                minutes=length.infusion_min), end=start + length.total, chair=chosen,
            conflicts=tuple(conflicts), alternatives=alts))
    return proposals
