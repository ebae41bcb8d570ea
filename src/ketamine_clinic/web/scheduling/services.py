"""Writes for scheduling: propose and book a series, reschedule, cancel, start a visit,
record the pre-visit checklist, and set up a site's chairs and hours.

Each write runs in one transaction, locks the site's chair rows first (so two desks
booking the same site queue up and the second sees the first's visits), re-checks every
rule against the database inside the lock, and leaves an audit entry. A series books all
its visits or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.clinical import clock
from ketamine_clinic.clinical.scheduling import Proposal, propose_series, series_starts
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.inputs import required_text
from ketamine_clinic.web.orders.models import Order
from ketamine_clinic.web.protocols import selectors as protocol_selectors
from ketamine_clinic.web.scheduling import selectors
from ketamine_clinic.web.scheduling.checklist import checklist
from ketamine_clinic.web.scheduling.models import (
    Chair,
    OpeningHours,
    SiteClosure,
    Visit,
    VisitEvent,
)
from ketamine_clinic.web.scheduling.signals import visits_booked
from ketamine_clinic.web.sessions import services as sessions


class BookingConflict(UsageError):
    """Some proposed visits do not fit; ``proposals`` says which, why, and what is free."""

    def __init__(self, proposals: Sequence[Proposal]) -> None:
        self.proposals = list(proposals)
        bad = [p for p in proposals if not p.ok]
        first = bad[0]
        more = f" (and {len(bad) - 1} more visit(s) with conflicts)" if len(bad) > 1 else ""
        super().__init__("visits", f"visit {first.number}: "
                                   f"{'; '.join(c.message for c in first.conflicts)}{more}. "
                                   "Nothing was booked.")


@dataclass(frozen=True)
class VisitRequest:
    number: int
    start: datetime
    chair: str | None = None


def _bookable(order: Order) -> None:
    if order.status != Order.Status.ACTIVE:
        raise UsageError("order", f"the order is {order.get_status_display().lower()}; only a "
                                  "signed and verified (active) order can be booked")
    if order.series.ended_at is not None:
        raise UsageError("order", "the series has ended")
    if protocol_selectors.consent_current(order.patient, order.protocol_version) is None:
        raise UsageError("order", "the patient has no consent in force for this protocol "
                                  "version: record the consent before booking visits")


def _window(requests: Sequence[VisitRequest], order: Order) -> tuple[datetime, datetime]:
    length = selectors.visit_length(order).total
    starts = [r.start for r in requests]
    # Wide enough for every slot the alternatives may search (two weeks past the last).
    return min(starts) - length - timedelta(days=1), max(starts) + timedelta(days=16)


def visits_propose(*, order: Order, requests: Sequence[VisitRequest],
                   now: datetime | None = None) -> list[Proposal]:
    """Check requested visits of ``order``'s series; nothing is written."""
    now = now or timezone.now()
    for r in requests:
        clock.aware("start", r.start)
    if not requests:
        raise UsageError("visits", "no visit was asked for")
    open_numbers = selectors.series_open_numbers(order)
    asked = [r.number for r in requests]
    if len(set(asked)) != len(asked):
        raise UsageError("visits", "the same visit number is asked for twice")
    extra = [n for n in asked if n not in open_numbers]
    if extra:
        planned = order.series.planned_sessions
        raise UsageError("visits", (
            f"visit {extra[0]} cannot be booked: the order's series has {planned} visits and "
            f"{len(open_numbers)} of them still to book"
            + (f" (numbers {', '.join(map(str, open_numbers))})" if open_numbers else "")))
    start, end = _window(requests, order)
    cal = selectors.site_calendar(order.patient.site, start=start, end=end)
    return propose_series(cal, requests=[(r.number, r.start, r.chair) for r in requests],
                          length=selectors.visit_length(order),
                          patient=selectors.patient_bookings(order), now=now)


def series_requests(*, order: Order, first_start: datetime, chair: str | None = None,
                    visits: int | None = None) -> list[VisitRequest]:
    """The series' open visits from ``first_start``, spaced as the order's series says."""
    clock.aware("first_start", first_start)
    numbers = selectors.series_open_numbers(order)
    count = len(numbers) if visits is None else visits
    if count < 1:
        raise UsageError("visits", "must be at least 1")
    if count > len(numbers):
        raise UsageError("visits", (
            f"{count} visits asked for, but the order's series has "
            f"{order.series.planned_sessions} planned and only {len(numbers)} left to book"))
    starts = series_starts(first_start, visits=count,
                           spacing_days=max(1, int(order.series.spacing_days)),
                           tz=selectors.site_tz(order.patient.site))
    return [VisitRequest(n, s, chair) for n, s in zip(numbers[:count], starts, strict=True)]


def _lock_site(site: Site) -> dict[str, Chair]:
    return {c.code: c for c in Chair.objects.select_for_update().filter(site=site,
                                                                         active=True)}


def visits_book(*, actor: Actor, order: Order, requests: Sequence[VisitRequest],
                now: datetime | None = None) -> list[Visit]:
    """Book every requested visit or none: raises :class:`BookingConflict` naming each
    conflict (with the next free slots) when any visit does not fit."""
    _bookable(order)
    site = order.patient.site
    with transaction.atomic():
        chairs = _lock_site(site)
        type(order.series).objects.select_for_update().get(pk=order.series_id)
        proposals = visits_propose(order=order, requests=requests, now=now)
        if not all(p.ok for p in proposals):
            raise BookingConflict(proposals)
        length = selectors.visit_length(order)
        visits = []
        for p in proposals:
            assert p.chair is not None
            visit = Visit.objects.create(
                patient=order.patient, site=site, series=order.series, order=order,
                chair=chairs[p.chair], number=p.number, starts_at=p.start,
                infusion_ends_at=p.infusion_end, ends_at=p.end,
                infusion_min=length.infusion_min, recovery_min=length.recovery_min,
                protocol_version=order.protocol_version, booked_by=actor.require_user())
            VisitEvent.objects.create(visit=visit, kind="booked", by=actor.require_user(), detail={
                "starts_at": p.start.isoformat(), "chair": p.chair,
                "infusion_min": length.infusion_min, "recovery_min": length.recovery_min,
                "protocol_version": order.protocol_version_id})
            visits.append(visit)
        audit_record(actor=actor.at(site.code), action=AuditAction.VISIT_BOOK_SERIES,
                     object_type="series", object_id=order.series_id,
                     detail={"patient": order.patient_id, "order": order.pk,
                             "visits": [v.pk for v in visits]})
        _after_booking(visits)
    return visits


def _after_booking(visits: Sequence[Visit]) -> None:
    """What follows a booking inside its transaction: the areas above scheduling act on it
    (the reminders area queues the visits' reminders; a booking rolled back leaves no job)."""
    visits_booked.send(sender=Visit, visits=list(visits))


def _locked_visit(visit: Visit) -> Visit:
    locked = Visit.objects.select_for_update(of=("self",)).select_related(
        "order", "order__series", "order__patient", "order__patient__site",
        "order__protocol_version", "chair", "site", "patient").get(pk=visit.pk)
    if locked.status != Visit.Status.BOOKED:
        raise UsageError("visit", f"the visit is {locked.get_status_display().lower()}; only a "
                                  "booked visit can be changed")
    return locked


def visit_reschedule(*, actor: Actor, visit: Visit, start: datetime, chair: str | None = None,
                     reason: str, now: datetime | None = None) -> Visit:
    """Move a booked visit to ``start`` (and ``chair``, or any free chair)."""
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("reason", "say why the visit is moved")
    clock.aware("start", start)
    now = now or timezone.now()
    with transaction.atomic():
        chairs = _lock_site(visit.site)
        v = _locked_visit(visit)
        order = v.order
        length = selectors.visit_length_of(v)
        window_start, window_end = start - length.total - timedelta(days=1), start + timedelta(
            days=16)
        cal = selectors.site_calendar(v.site, start=window_start, end=window_end,
                                      exclude_visit=v.pk)
        [p] = propose_series(cal, requests=[(v.number, start, chair)], length=length,
                             patient=selectors.patient_bookings(order, exclude_visit=v.pk),
                             now=now)
        if not p.ok:
            raise BookingConflict([p])
        assert p.chair is not None
        before = {"starts_at": v.starts_at.isoformat(), "chair": v.chair.code}
        v.starts_at, v.infusion_ends_at, v.ends_at = p.start, p.infusion_end, p.end
        v.chair = chairs[p.chair]
        v.version += 1
        v.save()
        VisitEvent.objects.create(visit=v, kind="rescheduled", by=actor.require_user(), detail={
            "from": before, "to": {"starts_at": p.start.isoformat(), "chair": p.chair},
            "reason": reason})
        _after_booking([v])
        audit_record(actor=actor.at(v.site.code), action=AuditAction.VISIT_RESCHEDULE,
                     object_type="visit", object_id=v.pk,
                     detail={"patient": v.patient_id, "from": before["starts_at"],
                             "to": p.start.isoformat()})
    return v


def visit_cancel(*, actor: Actor, visit: Visit, reason: str, note: str = "") -> Visit:
    """Cancel a booked visit with a reason. It never becomes a session, so it never counts
    as an infusion given, and its number may be booked again."""
    if reason not in Visit.CancelReason.values:
        raise UsageError("reason", "choose no-show, patient request, clinical reason or "
                                   "clinic closed")
    with transaction.atomic():
        v = _locked_visit(visit)
        v.status = Visit.Status.CANCELLED
        v.cancel_reason, v.cancel_note = reason, (note or "").strip()
        v.version += 1
        v.save()
        VisitEvent.objects.create(visit=v, kind="cancelled", by=actor.require_user(),
                                  detail={"reason": reason, "note": v.cancel_note})
        audit_record(actor=actor.at(v.site.code), action=AuditAction.VISIT_CANCEL,
                     object_type="visit", object_id=v.pk,
                     detail={"patient": v.patient_id, "reason": reason})
    return v


def visit_start(*, actor: Actor, visit: Visit) -> Any:
    """The patient is here: open the visit's infusion session (in its chair, at its time).
    The session's number in the series counts sessions actually opened."""
    with transaction.atomic():
        v = _locked_visit(visit)
        session = sessions.session_schedule(actor=actor, order=v.order,
                                            scheduled_for=v.starts_at, chair=v.chair.code)
        v.status, v.session = Visit.Status.STARTED, session
        v.version += 1
        v.save()
        VisitEvent.objects.create(visit=v, kind="started", by=actor.require_user(),
                                  detail={"session": session.pk})
        audit_record(actor=actor.at(v.site.code), action=AuditAction.VISIT_START,
                     object_type="visit", object_id=v.pk,
                     detail={"patient": v.patient_id, "session": session.pk})
    return session


# --------------------------------------------------------------------------- site setup


def chair_add(*, actor: Actor, site: Site, code: str, label: str = "") -> Chair:
    code = required_text("code", code)
    if Chair.objects.filter(site=site, code=code).exists():
        raise UsageError("code", f"chair {code} already exists at {site.name}")
    with transaction.atomic():
        chair = Chair.objects.create(site=site, code=code, label=(label or "").strip())
        audit_record(actor=actor.at(site.code), action=AuditAction.SITE_CHAIR_ADD,
                     object_type="chair", object_id=chair.pk, detail={"code": code})
    return chair


def chair_set_active(*, actor: Actor, chair: Chair, active: bool) -> Chair:
    with transaction.atomic():
        if not active and Visit.objects.filter(chair=chair, status=Visit.Status.BOOKED,
                                               starts_at__gte=timezone.now()).exists():
            raise UsageError("chair", f"chair {chair.code} has booked visits ahead: "
                                      "move them before retiring it")
        chair.active = active
        chair.save(update_fields=["active"])
        audit_record(actor=actor.at(chair.site.code), action=AuditAction.SITE_CHAIR_ACTIVE,
                     object_type="chair", object_id=chair.pk, detail={"active": active})
    return chair


def opening_hours_set(*, actor: Actor, site: Site,
                      week: dict[int, list[tuple[time, time]]]) -> None:
    """Replace the site's weekly hours (weekday 0 = Monday, local times)."""
    for day, windows in week.items():
        for opens, closes in windows:
            if not opens < closes:
                raise UsageError(f"hours.{day}", f"opens at {opens:%H:%M} but closes at "
                                                 f"{closes:%H:%M}")
    with transaction.atomic():
        OpeningHours.objects.filter(site=site).delete()
        OpeningHours.objects.bulk_create([
            OpeningHours(site=site, weekday=d, opens_at=o, closes_at=c)
            for d, windows in sorted(week.items()) for o, c in windows])
        audit_record(actor=actor.at(site.code), action=AuditAction.SITE_OPENING_HOURS,
                     object_type="site", object_id=site.pk,
                     detail={str(d): [f"{o:%H:%M}-{c:%H:%M}" for o, c in w]
                             for d, w in week.items()})


def closure_add(*, actor: Actor, site: Site, day: Any, reason: str) -> SiteClosure:
    reason = required_text("reason", reason)
    with transaction.atomic():
        closure, _ = SiteClosure.objects.get_or_create(site=site, day=day,
                                                       defaults={"reason": reason})
        audit_record(actor=actor.at(site.code), action=AuditAction.SITE_CLOSURE,
                     object_type="site", object_id=site.pk,
                     detail={"day": str(day), "reason": reason})
    return closure


def visit_checklist_record(*, actor: Actor, visit: Visit, answers: dict[str, bool],
                           escort_name: str, escort_phone: str = "") -> Visit:
    """Record the pre-visit checklist as the patient answered it, with the escort who will
    take them home. Every item must be answered; a "no" is kept (the census shows it)."""
    items = checklist()
    missing = [k for k in items.keys if k not in answers]
    if missing:
        raise UsageError(missing[0], "is not answered")
    escort_name = (escort_name or "").strip()
    if not escort_name:
        raise UsageError("escort_name", "name the adult who takes the patient home")
    with transaction.atomic():
        v = _locked_visit(visit)
        v.checklist = {"version": items.version,
                       "answers": {k: bool(answers[k]) for k in items.keys},
                       "escort_name": escort_name, "escort_phone": (escort_phone or "").strip()}
        v.checklist_at, v.checklist_by = timezone.now(), actor.user
        v.version += 1
        v.save()
        VisitEvent.objects.create(visit=v, kind="checklist", by=actor.require_user(),
                                  detail=v.checklist)
        audit_record(actor=actor.at(v.site.code), action=AuditAction.VISIT_CHECKLIST,
                     object_type="visit", object_id=v.pk, detail={"patient": v.patient_id})
    return v
