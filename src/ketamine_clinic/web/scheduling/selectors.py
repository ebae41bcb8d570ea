"""Reads for scheduling: a site's calendar for the core, the patient's bookings, the
day and week grids of the calendar pages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from ketamine_clinic.clinical.scheduling import (
    Busy,
    Interval,
    PatientBookings,
    SiteCalendar,
    VisitLength,
)
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.orders.models import Order
from ketamine_clinic.web.protocols.models import parsed_protocol
from ketamine_clinic.web.protocols.selectors import consent_current, screening_latest_status
from ketamine_clinic.web.scheduling.checklist import checklist
from ketamine_clinic.web.scheduling.models import Chair, OpeningHours, SiteClosure, Visit
from ketamine_clinic.web.sessions.models import InfusionSession

BOOKED = Visit.Status.BOOKED
# A visit fits in one opening window of one day, so none is longer than this: an overlap
# query can bound ``starts_at`` from both sides and stay a tight range on its index.
MAX_VISIT_SPAN = timedelta(days=1)
# Visits that hold their chair and the patient's time: booked, or started (in the chair).
HOLDING = (Visit.Status.BOOKED, Visit.Status.STARTED)


def site_tz(site: Site) -> ZoneInfo:
    return ZoneInfo(site.time_zone)


def sites_visible_to(user: User) -> QuerySet[Site]:
    return user.sites.all().order_by("name")


def visits_visible_to(user: User) -> QuerySet[Visit]:
    return Visit.objects.filter(site__in=user.sites.all()).select_related(
        "patient", "chair", "site", "series", "order")


def visit_length(order: Order) -> VisitLength:
    """The order's planned infusion time and its protocol's minimum observation [min]."""
    protocol = parsed_protocol(order.protocol_version)
    return VisitLength(infusion_min=int(order.planned_duration_min),
                       recovery_min=int(protocol.recovery.min_observation_min.value))


def site_calendar(site: Site, *, start: datetime, end: datetime,
                  exclude_visit: int | None = None) -> SiteCalendar:
    """The site's active chairs, hours, closures and the chair bookings that cross
    ``[start, end)`` (one indexed query over the visits)."""
    chairs = list(Chair.objects.filter(site=site, active=True).order_by("code"))
    hours: dict[int, list[tuple[time, time]]] = defaultdict(list)
    for h in OpeningHours.objects.filter(site=site).order_by("weekday", "opens_at"):
        hours[h.weekday].append((h.opens_at, h.closes_at))
    tz = site_tz(site)
    closed = {c.day: c.reason for c in SiteClosure.objects.filter(
        site=site, day__gte=start.astimezone(tz).date() - timedelta(days=1),
        day__lte=end.astimezone(tz).date() + timedelta(days=1))}
    rows = Visit.objects.filter(chair__in=chairs, status__in=HOLDING, starts_at__lt=end,
                                starts_at__gte=start - MAX_VISIT_SPAN, ends_at__gt=start)
    if exclude_visit is not None:
        rows = rows.exclude(pk=exclude_visit)
    busy: dict[str, list[Busy]] = defaultdict(list)
    # Plain tuples, not model instances: a busy month is a thousand rows.
    for code, starts, ends, series_id, number, given, family in rows.order_by(
            "starts_at", "id").values_list("chair__code", "starts_at", "ends_at", "series_id",
                                           "number", "patient__given_name",
                                           "patient__family_name"):
        busy[code].append(Busy(Interval(starts, ends), label=f"visit {number} of {given} "
                               f"{family}", series_key=str(series_id), chair=code))
    return SiteCalendar(tz=tz, hours={k: tuple(v) for k, v in hours.items()},
                        chairs=tuple(c.code for c in chairs),
                        busy={k: tuple(v) for k, v in busy.items()}, closed=closed,
                        slot_step_min=settings.SCHEDULING_SLOT_MINUTES)


def patient_bookings(order: Order, *, exclude_visit: int | None = None) -> PatientBookings:
    """The patient's other visits (any series, any site) and the series' bounds: not
    before the order was verified or the consent signed, not after the screening's
    validity."""
    patient, series = order.patient, order.series
    rows = Visit.objects.filter(patient=patient, status__in=HOLDING).select_related(
        "patient", "chair")
    if exclude_visit is not None:
        rows = rows.exclude(pk=exclude_visit)
    busy = [Busy(Interval(v.starts_at, v.ends_at), label=f"visit {v.number}"
                 + ("" if v.series_id == series.pk else " of another series"),
                 series_key=str(v.series_id), chair=v.chair.code) for v in rows]
    # Sessions charted without a booking (before scheduling existed) count too.
    for s in InfusionSession.objects.filter(patient=patient, visit__isnull=True).exclude(
            state="abandoned"):
        busy.append(Busy(Interval(s.scheduled_for, s.scheduled_for + visit_length(
            s.order).total), label=f"session {s.visit_number}", series_key=str(s.series_id)))
    bounds: list[tuple[datetime, str]] = []
    if order.verified_at is not None:
        bounds.append((order.verified_at, "the order was verified"))
    consent = consent_current(patient, order.protocol_version)
    if consent is not None:
        bounds.append((consent.signed_at, "the consent was signed"))
    earliest, reason = max(bounds, default=(None, ""))
    screening = series.screening
    return PatientBookings(
        busy=tuple(busy), earliest=earliest, earliest_reason=reason,
        last_day=screening.valid_until,
        last_day_reason="the screening's validity ends (screen again to book later)",
        series_key=str(series.pk), spacing_days=int(series.spacing_days))


def series_visits(series: Any) -> QuerySet[Visit]:
    return Visit.objects.filter(series=series).select_related("chair").order_by(
        "number", "starts_at")


def series_open_numbers(order: Order) -> list[int]:
    """Visit numbers of the series not yet booked (cancelled ones may be booked again),
    in order; sessions charted without a booking use up their numbers."""
    series = order.series
    taken = set(Visit.objects.filter(series=series, status__in=HOLDING)
                .values_list("number", flat=True))
    taken |= set(InfusionSession.objects.filter(series=series, visit__isnull=True)
                 .values_list("visit_number", flat=True))
    return [n for n in range(1, series.planned_sessions + 1) if n not in taken]


def infusions_given(series: Any) -> int:
    """Infusions actually given in the series: sessions whose infusion was started.
    Cancelled visits never become sessions; sessions abandoned before the infusion
    started are not counted."""
    return (InfusionSession.objects.filter(series=series, entries__kind="infusion_start")
            .distinct().count())


def patient_visits(patient: Any) -> QuerySet[Visit]:
    return (Visit.objects.filter(patient=patient).select_related("chair", "site", "session")
            .order_by("-starts_at", "-id"))


def bookable_orders(patient: Any) -> list[Order]:
    """The patient's verified orders whose series still has visits to book."""
    orders = Order.objects.filter(patient=patient, status=Order.Status.ACTIVE,
                                  series__ended_at__isnull=True).select_related("series")
    return [o for o in orders if series_open_numbers(o)]


# --------------------------------------------------------------------------- calendar pages


@dataclass
class ChairDay:
    chair: Chair
    visits: list[Visit]
    free: list[tuple[datetime, datetime]]


@dataclass
class DayGrid:
    site: Site
    day: date
    opens: list[tuple[time, time]]
    closed_reason: str
    chairs: list[ChairDay]

    @property
    def free_chairs(self) -> int:
        return sum(1 for c in self.chairs if not c.visits and not self.closed_reason)


def _local_day_bounds(site: Site, day: date) -> tuple[datetime, datetime]:
    tz = site_tz(site)
    return (datetime.combine(day, time(0), tz),
            datetime.combine(day + timedelta(days=1), time(0), tz))


def day_grid(site: Site, day: date) -> DayGrid:
    """Each chair's visits of the day and its free stretches within the opening hours."""
    start, end = _local_day_bounds(site, day)
    tz = site_tz(site)
    windows = [(h.opens_at, h.closes_at) for h in
               OpeningHours.objects.filter(site=site, weekday=day.weekday())]
    closure = SiteClosure.objects.filter(site=site, day=day).first()
    visits = list(Visit.objects.filter(site=site, status__in=HOLDING, starts_at__lt=end,
                                       starts_at__gte=start - MAX_VISIT_SPAN,
                                       ends_at__gt=start)
                  .select_related("patient", "chair", "session").order_by("starts_at"))
    by_chair: dict[int, list[Visit]] = defaultdict(list)
    for v in visits:
        by_chair[v.chair_id].append(v)
    chairs = []
    for chair in Chair.objects.filter(site=site, active=True).order_by("code"):
        mine = by_chair.get(chair.pk, [])
        free: list[tuple[datetime, datetime]] = []
        if closure is None:
            for opens, closes in windows:
                cursor = datetime.combine(day, opens, tz)
                w_end = datetime.combine(day, closes, tz)
                for v in mine:
                    if v.starts_at > cursor and v.starts_at <= w_end:
                        free.append((cursor, min(v.starts_at, w_end)))
                    cursor = max(cursor, v.ends_at)
                if cursor < w_end:
                    free.append((cursor, w_end))
        chairs.append(ChairDay(chair, mine, free))
    return DayGrid(site, day, windows, closure.reason if closure else "", chairs)


@dataclass
class WeekDay:
    day: date
    visits: int
    free_chairs: int
    chairs: int
    closed_reason: str


def week_grid(site: Site, monday: date) -> list[WeekDay]:
    return [_week_day(day_grid(site, monday + timedelta(days=i))) for i in range(7)]


def _week_day(g: DayGrid) -> WeekDay:
    closed = g.closed_reason or ("" if g.opens else "closed")
    return WeekDay(g.day, sum(len(c.visits) for c in g.chairs),
                   0 if closed else g.free_chairs, len(g.chairs), closed)


def visit_length_of(visit: Visit) -> VisitLength:
    """A booked visit keeps the length it was booked with."""
    return VisitLength(infusion_min=visit.infusion_min, recovery_min=visit.recovery_min)


# --------------------------------------------------------------------------- the day


@dataclass(frozen=True)
class ReadyCheck:
    key: str
    label: str
    ok: bool
    detail: str  # what is missing and what to do, or what was found


@dataclass
class CensusRow:
    visit: Visit
    checks: list[ReadyCheck]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[ReadyCheck]:
        return [c for c in self.checks if not c.ok]


def visit_readiness(visit: Visit, *, today: date | None = None) -> list[ReadyCheck]:
    """Whether the visit can go ahead: screening current, consent in force, order
    verified, escort named and the pre-visit checklist answered; each with what to do."""
    order, patient, pv = visit.order, visit.patient, visit.order.protocol_version
    day = today or timezone.localtime(visit.starts_at, site_tz(visit.site)).date()
    status = screening_latest_status(patient, pv, series=visit.series, today=day)
    if status is not None and status.current:
        screening = ReadyCheck("screening", "Screening", True,
                               f"current until {status.screening.valid_until:%d %b %Y}")
    else:
        why = "; ".join(status.blocking) if status is not None else "never screened"
        screening = ReadyCheck("screening", "Screening", False,
                               f"not current ({why}): a nurse screens the patient again")
    consent = consent_current(patient, pv)
    consent_check = ReadyCheck(
        "consent", "Consent", consent is not None,
        f"signed {timezone.localtime(consent.signed_at):%d %b %Y}" if consent is not None
        else "no consent in force for this protocol version: a clinician records it")
    order_check = ReadyCheck(
        "order", "Order", order.status == Order.Status.ACTIVE,
        "signed and verified" if order.status == Order.Status.ACTIVE else
        f"the order is {order.get_status_display().lower()}: it needs a physician's signature "
        "and a second clinician's check" if order.status in (Order.Status.DRAFT,
                                                             Order.Status.SIGNED)
        else f"the order is {order.get_status_display().lower()}: a physician writes a new one")
    answered = visit.checklist.get("answers", {}) if visit.checklist else {}
    escort = (visit.checklist or {}).get("escort_name", "")
    escort_check = ReadyCheck(
        "escort", "Escort", bool(escort),
        f"{escort} takes the patient home" if escort else
        (f"registered escort {patient.escort_name}, not yet confirmed for this visit: ask"
         if patient.escort_name else "no escort named: ask who takes the patient home"))
    items = checklist()
    no = [i for i in items.items if answered.get(i.key) is False]
    unanswered = [i for i in items.items if i.key not in answered]
    if not answered:
        detail = "not asked yet: call the patient"
    elif no:
        detail = "answered no: " + "; ".join(i.question for i in no)
    elif unanswered:
        detail = f"{len(unanswered)} question(s) not answered"
    else:
        detail = f"answered {timezone.localtime(visit.checklist_at):%d %b %H:%M}" \
            if visit.checklist_at else "answered"
    checklist_check = ReadyCheck("checklist", "Pre-visit checklist",
                                 bool(answered) and not no and not unanswered, detail)
    return [screening, consent_check, order_check, escort_check, checklist_check]


def census(site: Site, day: date) -> list[CensusRow]:
    """The day's visits at the site (booked or in the chair), in order of arrival."""
    start, end = _local_day_bounds(site, day)
    visits = (Visit.objects.filter(site=site, status__in=HOLDING, starts_at__gte=start,
                                   starts_at__lt=end)
              .select_related("patient", "chair", "order", "order__protocol_version",
                              "series", "site", "session")
              .order_by("starts_at", "chair__code"))
    return [CensusRow(v, visit_readiness(v, today=day)) for v in visits]
