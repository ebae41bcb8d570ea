"""The one place the FHIR area reads an infusion session's chart.

Everything here is built on what ``web/sessions/selectors.py`` offers (the timeline
entries, their correction fold, the rate events) and on the core's exact integration
(``clinical.monitoring.infusion_totals``). When the session chart is rewritten, this module
is re-pointed and the FHIR mapping stays as it is: the mapping sees only :class:`Chart`.

Corrections: an entry replaced by a correction, or entered in error, is kept with its
status so that a client that fetched it before learns it no longer stands; the retraction
rows themselves are not observations and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db.models import Prefetch, QuerySet

from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.web.sessions import selectors as sessions
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry

# Entry statuses as the FHIR mapping uses them.
FINAL = "final"
CORRECTED = "corrected"  # an entry that replaces an earlier one
WITHDRAWN = "entered-in-error"  # replaced by a correction, or retracted

OBSERVED_KINDS = ("vitals", "pain", "sedation", "dissociation", "recovery_score")
MEDICATION_KINDS = ("premedication", "rescue_medication")
END_KINDS = ("discharge", "transfer", "abandon")


@dataclass(frozen=True, slots=True)
class ChartEntry:
    entry_id: int
    kind: str
    at: datetime
    recorded_at: datetime
    recorded_by_id: int
    payload: dict[str, Any]
    status: str
    replaced_by: int | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of constant rate, named by the entry that set the rate."""

    entry_id: int
    start: datetime
    end: datetime | None  # None while the segment is still running
    rate_mg_per_h: Fraction
    pump_rate_ml_per_h: Fraction
    dose_mg: Fraction | None  # None while running
    recorded_by_id: int


@dataclass(frozen=True, slots=True)
class MedicationGiven:
    """A premedication or rescue dose given, with the order line it came from."""

    entry_id: int
    kind: str  # premedication | rescue_medication
    at: datetime
    drug: str
    dose: Decimal
    unit: str
    route: str
    indication: str
    order_line: int | None  # index into the order's premedications / rescue_medications
    recorded_by_id: int
    status: str


@dataclass
class Chart:
    session: InfusionSession
    observations: list[ChartEntry] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    medications: list[MedicationGiven] = field(default_factory=list)
    arrived_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    ended_at: datetime | None = None
    ended_kind: str = ""
    last_recorded_at: datetime | None = None
    charted_by: list[int] = field(default_factory=list)  # users in order of first entry
    total_mg: Fraction | None = None

    @property
    def state(self) -> str:
        return str(self.session.state)


def with_charts(qs: QuerySet[InfusionSession]) -> QuerySet[InfusionSession]:
    """Sessions with what :func:`chart_of` reads, in a fixed number of queries."""
    return qs.select_related("order", "site", "patient").prefetch_related(
        Prefetch("entries", TimelineEntry.objects.order_by("id")))


def _order_line(order: Any, kind: str, payload: dict[str, Any]) -> int | None:
    """The order's line a dose came from: named on the entry, else matched by drug."""
    if isinstance(payload.get("order_line"), int):
        return int(payload["order_line"])
    lines = order.premedications if kind == "premedication" else order.rescue_medications
    drug = str(payload.get("drug", "")).strip().lower()
    for i, line in enumerate(lines or []):
        if str(line.get("drug", "")).strip().lower() == drug:
            return i
    return None


def chart_of(session: InfusionSession) -> Chart:
    entries: Sequence[TimelineEntry] = sessions.entries_of(session)
    chart = Chart(session=session)
    if not entries:
        return chart
    views = sessions.fold(list(entries))
    seen: list[int] = []
    for e in entries:
        if e.recorded_by_id not in seen:
            seen.append(e.recorded_by_id)
    chart.charted_by = seen
    chart.last_recorded_at = max(e.recorded_at for e in entries)
    effective: list[TimelineEntry] = []
    for v in views:
        e = v.entry
        if e.kind == "entered_in_error":
            continue
        if v.status == "effective":
            status = CORRECTED if e.corrects_id is not None else FINAL
            effective.append(e)
        else:
            status = WITHDRAWN
        if e.kind in OBSERVED_KINDS:
            chart.observations.append(ChartEntry(
                e.pk, e.kind, e.occurred_at, e.recorded_at, e.recorded_by_id, e.payload,
                status, v.replaced_by))
        elif e.kind in MEDICATION_KINDS:
            p = e.payload
            chart.medications.append(MedicationGiven(
                entry_id=e.pk, kind=e.kind, at=e.occurred_at, drug=str(p.get("drug", "")),
                dose=Decimal(str(p.get("dose", 0))), unit=str(p.get("unit", "")),
                route=str(p.get("route", "")), indication=str(p.get("indication", "")),
                order_line=_order_line(session.order, e.kind, p),
                recorded_by_id=e.recorded_by_id, status=status))
    effective.sort(key=lambda x: (x.occurred_at, x.pk))
    chart.observations.sort(key=lambda c: (c.at, c.entry_id))
    chart.medications.sort(key=lambda m: (m.at, m.entry_id))
    for e in effective:
        if e.kind == "check_in" and chart.arrived_at is None:
            chart.arrived_at = e.occurred_at
        if e.kind in END_KINDS:
            chart.ended_at, chart.ended_kind = e.occurred_at, e.kind
    _segments(chart, [e for e in effective if e.kind in sessions.RATE_KINDS])
    return chart


def _segments(chart: Chart, rate_entries: list[TimelineEntry]) -> None:
    if not rate_entries:
        return
    order = chart.session.order
    conc = Fraction(str(order.bag_drug_mg)) / Fraction(str(order.bag_volume_ml))
    events = [sessions.rate_event_of(e) for e in rate_entries]
    running = events[-1].kind is not mon.RateEventKind.STOP
    at = max(chart.last_recorded_at or events[-1].at, events[-1].at)
    totals = mon.infusion_totals(events, weight_kg=Fraction(str(order.dosing_weight_kg)),
                                 concentration_mg_per_ml=conc,
                                 at=at if running else None)
    chart.started_at, chart.stopped_at = totals.started_at, totals.stopped_at
    chart.total_mg = None if running else totals.total_mg
    openers = {}
    for e in rate_entries:
        if e.kind in ("infusion_start", "rate_change", "resume"):
            openers[e.occurred_at] = e
    last = len(totals.segments) - 1
    for i, seg in enumerate(totals.segments):
        opener = openers[seg.start]
        still = running and i == last and totals.status is mon.InfusionStatus.RUNNING
        chart.segments.append(Segment(
            entry_id=opener.pk, start=seg.start, end=None if still else seg.end,
            rate_mg_per_h=seg.rate_mg_per_h,
            pump_rate_ml_per_h=seg.rate_mg_per_h / conc,
            dose_mg=None if still else seg.dose_mg, recorded_by_id=opener.recorded_by_id))


def charts_of(sessions_: Iterable[InfusionSession]) -> list[Chart]:
    return [chart_of(s) for s in sessions_]
